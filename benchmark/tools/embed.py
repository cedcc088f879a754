"""``bench embed``: a pretrained torchvision backbone's features of an image dataset the suite reads, written as one
``.npz`` that ``--dataset embeddings`` trains on (:mod:`benchmark.data.embeddings`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.data import build_dataset
from benchmark.data.images import ImageFiles, image_blocks
from benchmark.models import torchvision_backbone


@torch.no_grad()
def embed(
    dataset: str,
    options: dict,
    data_root: str,
    backbone: str,
    out: Path,
    device: torch.device,
    batch_size: int = 64,
    advance: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, np.ndarray]:
    """Features of every sample of ``dataset`` (an image dataset read from ``data_root``, with its transform) from
    ``backbone`` with its ImageNet weights from torchvision's cache, in eval mode, written to ``out`` (``.npz``,
    atomically) with the labels, split, groups and names; returns the arrays. ``advance(done, total)`` is told after
    each batch. Another dataset, missing weights or an ``out`` that is not a ``.npz`` path is a BenchError before
    anything is computed."""
    if out.suffix != ".npz":
        raise BenchError(f"bad --out {out}: give a .npz file")
    data = build_dataset(dataset, options, data_root)
    if len(data.spaces) != 1 or not isinstance(data.spaces[0].x, ImageFiles):
        raise BenchError(f"bench embed reads an image dataset from --data-root (waterbirds, celeba), not {dataset}")
    model, size = torchvision_backbone(backbone, pretrained=True)
    model.eval().to(device)
    files = data.spaces[0].x
    features = np.empty((len(files), size), dtype=np.float32)
    for rows, images in image_blocks(files, batch_size):
        features[rows] = model(images.to(device)).float().cpu().numpy()
        advance(int(rows[-1]) + 1, len(files))
    arrays = {
        "features": features[data.row.numpy()],
        "y": data.y.numpy(),
        "a": data.a.numpy(),
        "g": data.g.numpy(),
        "split": data.split_code.numpy(),
        "class_names": np.array(data.class_names),
        "attr_names": np.array(data.attr_names),
        "group_names": np.array(data.group_names),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, out)
    return arrays
