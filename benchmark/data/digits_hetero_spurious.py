"""``digits-hetero-spurious``: ten digit classes in three feature spaces; the majority space carries a spurious cue."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.core.registry import register_dataset
from benchmark.core.settings import FRACTION, Range
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.data.sources import class_quota_parts, mnist1d, sklearn_digits, stratified_parts

SPLIT_FRACTIONS = (0.6, 0.2, 0.2)  # MNIST-1D source sequences: train/val/test, stratified by class
NUM_CLASSES = 10
GROUP_NAMES = ["mnist1d,aligned", "mnist1d,conflicting", "digits8", "digits-proj"]
CUE_NOISE = 0.1  # standard deviation of the noise on every position of the marker


def other_classes(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each label, a class drawn uniformly among the other nine."""
    return (y + rng.integers(1, NUM_CLASSES, size=len(y))) % NUM_CLASSES


def conflicting(y: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    """A bool per sample: ``share`` of each class (rounded; shuffled) is True."""
    chosen = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        chosen[members[: int(round(share * len(members)))]] = True
    return chosen


def with_marker(sequences: np.ndarray, cue: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Each sequence (n × 40) followed by a 10-position marker with a bump of height ``strength`` at the position of
    its ``cue`` class, and Gaussian noise of :data:`CUE_NOISE` on every position."""
    marker = strength * np.eye(NUM_CLASSES)[cue] + CUE_NOISE * rng.standard_normal((len(cue), NUM_CLASSES))
    return np.concatenate([sequences, marker.astype(np.float32)], 1)


@register_dataset("digits-hetero-spurious")
class DigitsHeteroSpurious(DatasetBuilder):
    """Groups: the MNIST-1D sequences whose marker names their own class (aligned) or another (conflicting), the 8×8
    digit images, the projected digit vectors. The sequences, the majority feature space, carry a site marker: ten
    extra positions after the 40 of the signal, with a bump at the position of a class. In training the marker
    names the sequence's own class for ``1 − conflict`` of each class (95%) and a uniformly drawn other class for the
    rest; in val and test every held-out sequence appears twice, once with each kind of marker, so the two
    sequence groups hold the same signals. The marker is learnt far faster than the signal (a bump at a fixed
    position against MNIST-1D's shifted, scaled, noisy templates), so ERM leans on it; read through a feature
    space of its own (its own encoder), it is a shortcut only that space offers. The image and vector groups are
    the rare feature spaces, with no marker. Minority group (declared): mnist1d,conflicting.

    Options: ``n_mnist1d`` generated sequences (25000, split 60/20/20 stratified by class: 15000 train, 5000 val and
    5000 test, each of the latter in both sequence groups), ``n_eval`` val and test images of each sklearn-derived
    space (200; n_eval / 10 per class; the 997 images left train the two spaces half and half), ``proj_dim`` and
    ``proj_noise`` (the vectors: a fixed random projection of the 64 pixels, standardised, plus Gaussian noise),
    ``conflict`` (the training share of sequences whose marker names another class) and ``cue_strength`` (the
    bump's height; the sequences are standardised).
    """

    description = (
        "Ten digit classes in three feature spaces: MNIST-1D sequences (the majority), scikit-learn's 8×8 digits and "
        "other digits through a fixed random projection with noise (vectors). Every sequence carries a site marker "
        "after its 40 positions, a bump at the position of a class: its own class in 95% of training sequences "
        "(aligned), another in 5% (conflicting). Val and test show every held-out sequence with both, so the "
        "aligned and conflicting groups hold the same signals; images and vectors have no marker."
    )
    options = {
        "n_mnist1d": 25000,
        "n_eval": 200,
        "proj_dim": 64,
        "proj_noise": 0.1,
        "conflict": 0.05,
        "cue_strength": 1.0,
    }
    # 15 epochs (160 steps each), as digits-hetero: see README "Datasets" for ERM's convergence at this budget
    train_defaults = {"epochs": 15}
    bounds = {
        "n_mnist1d": Range(100, 1_000_000),
        "n_eval": Range(NUM_CLASSES, 440),  # two spaces × val and test take 4 × n_eval / 10 of each class (174 least)
        "proj_dim": Range(1, 4096),
        "proj_noise": Range(0, 100),
        "conflict": FRACTION,
        "cue_strength": Range(0, 100),
    }

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        rng = np.random.default_rng([options["seed"], 0x5C0E])
        seq_x, seq_y = mnist1d(options["n_mnist1d"], options["seed"])
        seq_split = stratified_parts(seq_y, SPLIT_FRACTIONS, rng)
        train, held = np.flatnonzero(seq_split == 0), np.flatnonzero(seq_split > 0)
        flipped = conflicting(seq_y[train], options["conflict"], rng)
        rows = np.concatenate([train, held, held])  # every held-out sequence once aligned, once conflicting
        cue = np.concatenate([np.where(flipped, other_classes(seq_y[train], rng), seq_y[train]), seq_y[held],
                              other_classes(seq_y[held], rng)])  # fmt: skip
        sequences = with_marker(seq_x[rows], cue, options["cue_strength"], rng)

        img, img_y = sklearn_digits()
        per_class = options["n_eval"] // NUM_CLASSES
        part = class_quota_parts(img_y, (per_class,) * 4, rng)  # val and test of digits8, then of digits-proj
        img_train = part == 4
        img_space = np.where(img_train, 0, part // 2)
        img_space[img_train] = stratified_parts(img_y[img_train], (0.5, 0.5), rng)
        img_split = np.where(img_train, 0, 1 + part % 2)
        flat = img[img_space == 1].reshape(-1, 64)
        projected = flat @ (rng.standard_normal((64, options["proj_dim"])).astype(np.float32) / 8.0)
        projected = (projected - projected.mean(0)) / projected.std(0)
        projected += options["proj_noise"] * rng.standard_normal(projected.shape).astype(np.float32)

        spaces = [
            FeatureSpace("mnist1d", "sequence", torch.from_numpy(sequences).unsqueeze(1)),
            FeatureSpace("digits8", "image", torch.from_numpy(img[img_space == 0]).unsqueeze(1).contiguous()),
            FeatureSpace("digits-proj", "vector", torch.from_numpy(projected.astype(np.float32))),
        ]
        labels = [seq_y[rows], img_y[img_space == 0], img_y[img_space == 1]]
        splits = [seq_split[rows], img_split[img_space == 0], img_split[img_space == 1]]
        sequence_group = (cue != seq_y[rows]).astype(np.int64)  # 0 aligned, 1 conflicting
        g = np.concatenate([sequence_group, np.full(len(labels[1]), 2), np.full(len(labels[2]), 3)])
        return GroupDataset(
            name=self.name,
            spaces=spaces,
            space=torch.from_numpy(np.concatenate([np.full(len(y), s) for s, y in enumerate(labels)])),
            row=torch.from_numpy(np.concatenate([np.arange(len(y)) for y in labels])),
            y=torch.from_numpy(np.concatenate(labels)),
            a=torch.from_numpy(g),
            g=torch.from_numpy(g),
            split_code=torch.from_numpy(np.concatenate(splits)),
            class_names=[str(c) for c in range(NUM_CLASSES)],
            attr_names=list(GROUP_NAMES),
            group_names=list(GROUP_NAMES),
            description=self.description,
            minority=(GROUP_NAMES.index("mnist1d,conflicting"),),  # groups are not (class, attribute) cells: declared
        )
