"""Shared fixtures: a tiny synthetic dataset, a small digits-hetero build, and a CLI runner."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.core.registry import DATASETS, METHODS
from benchmark.data import build_dataset
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.methods.base import TrainInfo
from benchmark.plugins import load_plugins
from benchmark.runs.spec import TrainConfig
from benchmark.training.setup import train_info

load_plugins(())

IMAGE_DATASETS = ("waterbirds", "celeba")
BUILTIN_METHODS = tuple(n for n in METHODS.names() if METHODS.get(n).__module__.startswith("benchmark.methods."))
"""Every built-in method, in name order: those the modules of ``benchmark/methods/`` register (the registry may also
hold plugins that tests register)."""
REFERENCE_METHODS = ("anchor-w2", "dro-lt", "erm", "groupdro", "jm1", "jtt", "mr2", "nc-frozen")
"""The built-in methods the committed tuned reference runs (``reports/tuned/runs/``) cover: those registered when it
was trained."""
needs_torchvision = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="needs the images extra (torchvision)"
)
"""Marks a test that loads real-format images: it runs wherever the images extra is installed (CI installs it)."""

SMALL_HETERO = ["--dataset", "digits-hetero", "--set", "data.n_mnist1d=600", "--epochs", "2"]


def small_hetero_options(**overrides) -> dict:
    """digits-hetero options with a small MNIST-1D group, for fast tests."""
    return {**DATASETS.get("digits-hetero").option_defaults(), "n_mnist1d": 600, **overrides}


@pytest.fixture(scope="session")
def small_hetero() -> GroupDataset:
    return build_dataset("digits-hetero", small_hetero_options())


def vector_dataset(name: str, x: torch.Tensor, y, a, g, split, class_names, attr_names, group_names) -> GroupDataset:
    """A dataset of one vector feature space ``x`` (one row per sample) with the given labels and splits."""
    n = len(x)
    return GroupDataset(
        name=name,
        spaces=[FeatureSpace("vec", "vector", x)],
        space=torch.zeros(n, dtype=torch.long),
        row=torch.arange(n),
        y=y,
        a=a,
        g=g,
        split_code=split,
        class_names=class_names,
        attr_names=attr_names,
        group_names=group_names,
    )


def toy_dataset(n_per_group=(40, 20, 10), num_classes: int = 3, seed: int = 0, dtype=torch.float32) -> GroupDataset:
    """A synthetic dataset: groups are feature spaces of different kinds (vector, image, sequence)."""
    gen = torch.Generator().manual_seed(seed)
    shapes = [("vec", "vector", (5,)), ("img", "image", (1, 4, 4)), ("seq", "sequence", (1, 6))]
    spaces, space, row, y, split = [], [], [], [], []
    for s, n in enumerate(n_per_group):
        name, kind, shape = shapes[s % len(shapes)]
        spaces.append(FeatureSpace(f"{name}{s}", kind, torch.randn(n, *shape, generator=gen, dtype=dtype)))
        space += [s] * n
        row += list(range(n))
        y += [i % num_classes for i in range(n)]
        split += [i % 5 // 3 * (1 + i % 2) if i % 5 >= 3 else 0 for i in range(n)]
    space_t = torch.tensor(space)
    return GroupDataset(
        name="toy",
        spaces=spaces,
        space=space_t,
        row=torch.tensor(row),
        y=torch.tensor(y),
        a=space_t.clone(),
        g=space_t.clone(),
        split_code=torch.tensor(split),
        class_names=[str(c) for c in range(num_classes)],
        attr_names=[s.name for s in spaces],
        group_names=[s.name for s in spaces],
    )


@pytest.fixture
def toy() -> GroupDataset:
    return toy_dataset()


@pytest.fixture
def float64():
    """Build models and method state in float64 so that references match to 1e-12."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def make_info(data: GroupDataset, epochs: int = 1, seed: int = 0) -> TrainInfo:
    """The TrainInfo the trainer would give a method for ``data`` (batch size 8)."""
    return train_info(data, TrainConfig(epochs=epochs, batch_size=8), seed)


def bench_in_process(*args: str) -> subprocess.CompletedProcess:
    """Run the ``bench`` app in this process (fast; for input validation) with the same result shape as
    :func:`bench`. An exception other than the app's exit becomes a non-zero code with the traceback text."""
    from typer.testing import CliRunner

    from benchmark.cli import app
    from benchmark.cli.common import console

    console.width = 200  # the console read COLUMNS once, when first imported: whichever test came first
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (most recent call last):\n" + repr(result.exception)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)


def bench(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the ``bench`` console script in a subprocess and capture its output."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
