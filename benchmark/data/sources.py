"""Offline data sources shipped inside packages, split helpers shared by the dataset builders, and the checks on
files read from a ``--data-root``: there, not behind a symlink loop, and metadata tables of a sane size."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import torch

from benchmark.core.errors import BenchError

SPLIT_NAMES = {"train": 0, "val": 1, "test": 2, "0": 0, "1": 1, "2": 2}  # a user's split values, as split codes
MAX_TABLE_BYTES = 2**30  # metadata tables larger than this are refused; the real ones are at most ~26 MB (CelebA)


def sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 real 8×8 handwritten digits: images in [0, 1] (n×8×8 float32) and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_samples`` MNIST-1D sequences (n×40 float32, standardised) and labels, generated offline: the
    ``mnist1d`` package's ``make_dataset`` for this seed, bit for bit, without its per-sample calls
    (:func:`~benchmark.data.mnist1d_generator.generate`); no global random state changes."""
    from benchmark.data.mnist1d_generator import generate

    x, y = generate(num_samples, seed)
    return x.astype(np.float32), y.astype(np.int64)


def stratified_parts(y: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Assign each sample to a part (0..len(fractions)-1) with the given fractions within every class.

    Each class is shuffled and cut at rounded cumulative fractions, so part sizes per class differ from
    the exact fractions by less than one sample.
    """
    part = np.empty(len(y), dtype=np.int64)
    edges = np.cumsum((0.0,) + tuple(fractions))
    edges = edges / edges[-1]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        cuts = np.rint(edges * len(members)).astype(int)
        for p in range(len(fractions)):
            part[members[cuts[p] : cuts[p + 1]]] = p
    return part


def one_hot(values: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Rows of 0/1 indicators (float32) over sorted ``categories``; a value not among them gives an all-zero row."""
    pos = np.searchsorted(categories, values).clip(max=len(categories) - 1)
    found = np.flatnonzero(categories[pos] == values)
    out = np.zeros((len(values), len(categories)), dtype=np.float32)
    out[found, pos[found]] = 1.0
    return out


def class_quota_parts(y: np.ndarray, quotas: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Assign each sample to a part: in every class (shuffled), the first ``quotas[0]`` go to part 0, the next
    ``quotas[1]`` to part 1, and so on; the rest of the class goes to part ``len(quotas)``. A class with fewer
    than ``sum(quotas)`` samples is an error."""
    part = np.full(len(y), len(quotas), dtype=np.int64)
    cuts = np.cumsum((0, *quotas))
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        if len(members) < cuts[-1]:
            raise BenchError(f"class {c} has {len(members)} samples, fewer than the {cuts[-1]} its quotas need")
        for p in range(len(quotas)):
            part[members[cuts[p] : cuts[p + 1]]] = p
    return part


def rotate(images: torch.Tensor, degrees: np.ndarray) -> torch.Tensor:
    """Rotate each image (n×C×H×W) about its centre by its angle, filling with zeros (bilinear)."""
    theta = torch.from_numpy(np.deg2rad(degrees)).float()
    cos, sin = torch.cos(theta), torch.sin(theta)
    zeros = torch.zeros_like(cos)
    affine = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    grid = torch.nn.functional.affine_grid(affine, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def data_file(root: str | Path, name: str) -> Path:
    """``root/name``, or a BenchError naming the file and the folder it was looked for in (or the symlink loop on
    the way)."""
    path = Path(root) / name
    if not path.is_file():
        refuse_symlink_loop(path, f"{name} in {root}")
        hint = " (found a .gz next to it: decompress it)" if path.with_name(path.name + ".gz").is_file() else ""
        raise BenchError(f"file {name} not found in {Path(root).resolve()}{hint}")
    return path


def refuse_symlink_loop(path: Path, wanted: str) -> None:
    """A BenchError naming the first part of ``path`` (a parent folder or the path itself) that is a symlink loop
    (``ln -s x x``, or ``a -> b`` and ``b -> a``), if one is; ``wanted`` says what was looked for."""
    for part in (*reversed(path.parents), path):
        try:
            part.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BenchError(f"symlink loop at {part} (while looking for {wanted})") from None
            return


def check_table_size(path: Path) -> None:
    """A BenchError naming ``path``, its size and :data:`MAX_TABLE_BYTES` when the metadata table is larger, before
    anything reads it."""
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise BenchError(
            f"{path} is {size / 2**30:.1f} GiB ({size} bytes), over the {MAX_TABLE_BYTES / 2**30:g} GiB limit for a "
            "metadata file: not the dataset's file?"
        )
