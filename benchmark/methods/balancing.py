"""Data balancing shared by ``subg``/``suby`` and ``rwg``/``rwy`` (Idrissi, Arjovsky, Pezeshki & Lopez-Paz, *Simple
data balancing achieves competitive worst-group-accuracy*, CLeaR 2022): the labels a method balances (training
groups or classes), a balanced subset drawn once per run with its sampler, and a sampler that draws with
replacement so that every label is equally likely per draw. Each pair of methods differs only in ``balance``.
"""

from __future__ import annotations

from functools import partial
from typing import ClassVar

import numpy as np
import torch

from benchmark.data.batches import Batch, BatchSampler, ShuffleSampler, make_batches
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Stage
from benchmark.methods.erm import ERM


def balance_labels(data: GroupDataset, balance: str) -> np.ndarray:
    """Host labels of every sample that a method balances: its group (``"group"``, training group labels) or its
    class (``"class"``, class labels only)."""
    return data.g_cpu if balance == "group" else data.y_cpu


def label_names(data: GroupDataset, balance: str) -> list[str]:
    """The names of the groups or classes, in label order."""
    return data.group_names if balance == "group" else data.class_names


def balanced_subset(labels: np.ndarray, indices: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """A uniformly random subset of ``indices`` (ascending) with as many samples of each label present among them
    as the rarest label present has: each sample gets a random key from ``generator`` (drawn on its device), and
    each label keeps its samples with the smallest keys."""
    indices = np.asarray(indices, dtype=np.int64)
    keys = torch.rand(len(indices), generator=generator, device=generator.device, dtype=torch.float64)
    own = labels[indices]
    order = np.lexsort((keys.cpu().numpy(), own))  # by label, random within a label
    counts = np.bincount(own)
    size = counts[counts > 0].min()
    rank = np.arange(len(order)) - (np.cumsum(counts) - counts)[own[order]]
    return np.sort(indices[order[rank < size]])


class SubsetSampler(ShuffleSampler):
    """Uniform shuffling of the samples of ``indices`` that ``keep`` (a boolean mask over all samples) marks: ERM's
    batches on that subset. A cycle is one pass over the subset, so a stage's steps run through it many times."""

    name = "subset"

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int, keep: np.ndarray):
        indices = np.asarray(indices, dtype=np.int64)
        super().__init__(data, indices[keep[indices]], batch_size)


class ReweightedSampler(BatchSampler):
    """Draws with replacement, as many per cycle as ``indices`` holds: each draw a uniformly random label (group or
    class, per ``balance``) among those present, then a uniformly random sample of it. Each sample's probability
    is thus 1 / (number of labels × n of its label), the distribution of PyTorch's ``WeightedRandomSampler`` with
    weights 1 / n of the label, which the paper's code uses."""

    name = "reweighted"

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int, balance: str):
        super().__init__(data, indices, batch_size)
        own = balance_labels(data, balance)[self.indices]
        self.by_label = self.indices[np.argsort(own, kind="stable")]
        self.counts = np.unique(own, return_counts=True)[1]
        self.starts = np.cumsum(self.counts) - self.counts

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        label = rng.integers(len(self.counts), size=len(self.indices))
        order = self.by_label[self.starts[label] + rng.integers(self.counts[label])]
        return make_batches(self.data, order, np.arange(len(order)) // self.batch_size)


class Subsampled(ERM):
    """ERM on a balanced subset of the training set drawn once per run from the run's generator: every label
    (``balance``) kept at the size of the rarest. The stage takes the run's whole step budget, cycling through the
    subset; its facts record the subset's size and its size per label."""

    balance: ClassVar[str]

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        subset = balanced_subset(balance_labels(data, self.balance), data.indices_cpu("train"), self.info.generator)
        keep = np.zeros(len(data.y_cpu), dtype=bool)
        keep[subset] = True
        stage.sampler = partial(SubsetSampler, keep=keep)
        names = label_names(data, self.balance)
        sizes = np.bincount(balance_labels(data, self.balance)[subset], minlength=len(names))
        return {"subset_size": len(subset), f"subset_{self.balance}_sizes": dict(zip(names, sizes.tolist()))}


class Reweighted(ERM):
    """ERM on batches drawn with replacement, every label (``balance``) equally likely per draw
    (:class:`ReweightedSampler`)."""

    balance: ClassVar[str]

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        stage.sampler = partial(ReweightedSampler, balance=self.balance)
        return {}
