"""``bench embed``: a backbone's features of tiny fake Waterbirds and CelebA folders in the real formats, against the
backbone applied directly, read back by ``--dataset embeddings`` (whose runs test_data_embeddings.py trains); missing
weights and wrong inputs are one line. The ImageNet weights are a randomly initialised model's, saved where
torchvision's cache keeps them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import bench_in_process, needs_torchvision
from test_data_real_images import fake_celeba, fake_waterbirds

from benchmark.core.registry import DATASETS
from benchmark.data.embeddings import Embeddings

pytestmark = needs_torchvision
SMALL = ("--set", "data.image_size=32", "--set", "data.workers=0")


@pytest.fixture
def cached_resnet18(tmp_path, monkeypatch) -> torch.nn.Module:
    """A resnet18 with random weights, saved as torchvision's cached ImageNet weights under a fresh TORCH_HOME."""
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    path.parent.mkdir(parents=True)
    torch.save(model.state_dict(), path)
    model.fc = torch.nn.Identity()
    return model.eval()


@pytest.mark.parametrize("dataset", ["waterbirds", "celeba"])
def test_features_are_the_backbones_and_read_as_embeddings(tmp_path, cached_resnet18, dataset):
    root = tmp_path / "data"
    {"waterbirds": fake_waterbirds, "celeba": fake_celeba}[dataset](root)
    out = tmp_path / "feats.npz"
    done = bench_in_process("embed", dataset, "--backbone", "resnet18", "--out", str(out), "--data-root", str(root),
                            *SMALL, "--batch-size", "5", "--device", "cpu")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"samples × 512 features written to {out}" in done.stdout
    data = DATASETS.get(dataset)().build(
        {**DATASETS.get(dataset).option_defaults(), "image_size": 32, "workers": 0}, str(root)
    )
    files = data.spaces[0].x
    with torch.no_grad():
        expected = cached_resnet18(files.load(data.row.numpy()))
    embedded = Embeddings().build(Embeddings.option_defaults(), str(out))
    np.testing.assert_allclose(embedded.spaces[0].x.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    assert embedded.group_names == data.group_names and embedded.class_names == data.class_names
    assert torch.equal(embedded.y, data.y) and torch.equal(embedded.split_code, data.split_code)


def test_missing_weights_and_wrong_inputs_are_one_line_and_write_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    root = tmp_path / "data"
    fake_waterbirds(root)
    out = tmp_path / "feats.npz"
    birds = ("waterbirds", "--out", str(out), *SMALL)
    cases = [
        ((*birds, "--backbone", "resnet18"), "pretrained resnet18 weights not found at"),
        ((*birds, "--backbone", "resnet1000"), "unknown torchvision model 'resnet1000'"),
        (("waterbirds", "--backbone", "resnet18", "--out", str(tmp_path / "feats.csv")), "give a .npz file"),
        (("digits-lt", "--backbone", "resnet18", "--out", str(out)), "not digits-lt"),
    ]
    for args, message in cases:
        refused = bench_in_process("embed", *args, "--data-root", str(root))
        text = refused.stdout + refused.stderr
        assert refused.returncode == 2 and message in text and len(text.strip().splitlines()) == 1, text
    assert not out.exists()
