"""The shared machinery of the spurious splits (:mod:`benchmark.data.spurious`): :class:`SpuriousBuilder`, which
turns a class rule, an attribute renderer, training group counts and an eval policy into a :class:`GroupDataset`.

A builder takes a base image source, a class rule (digit -> y ∈ {0, 1}), an attribute renderer (8×8 digits and
a ∈ {0, 1} -> 3×16×16 RGB images, :mod:`benchmark.data.spurious_render`), a preset of training group counts and
an eval policy. Groups are g = 2y + a. The source images are split 50/25/25 (stratified by digit) before
anything else, so train, val and test never share a source image; within a split a source image is reused
with a different background, tint and shift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.data.sources import sklearn_digits, stratified_parts

# source images per split (train/val/test), stratified by digit: a quarter each for val and test, so that every
# waterbirds-style group has over 200 distinct source images in val and in test
SOURCE_FRACTIONS = (0.5, 0.25, 0.25)
MIN_TEST_GROUP = 30  # every group needs at least this many test samples for a usable worst-group accuracy


@dataclass
class Plan:
    """Which source image each sample renders, with its class, attribute and split (all length n)."""

    source: np.ndarray
    y: np.ndarray
    a: np.ndarray
    split: np.ndarray


def apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Integers proportional to ``weights`` that sum to ``total`` (largest remainders)."""
    share = np.asarray(weights, dtype=np.float64) / np.sum(weights) * total
    counts = np.floor(share).astype(np.int64)
    counts[np.argsort(counts - share, kind="stable")[: total - counts.sum()]] += 1
    return counts


def eval_counts(train: np.ndarray, policy: str, size: int, floor: np.ndarray) -> np.ndarray:
    """Group counts of an eval split of ``size`` samples from the training counts (groups g = 2y + a).

    ``natural``: the training group proportions (CelebA). ``balanced``: the training class proportions,
    each class split evenly between a = 0 and a = 1 (Waterbirds' val and test). Each group is then raised
    to at least ``floor`` (per group), so the split holds ``size`` samples plus those top-ups.
    """
    if policy == "natural":
        counts = apportion(train, size)
    else:
        per_class = apportion(train.reshape(2, 2).sum(1), size)
        counts = np.stack([(per_class + 1) // 2, per_class // 2], 1).reshape(-1)
    return np.maximum(counts, floor)


class SpuriousBuilder(DatasetBuilder):
    """Generic binary-class, binary-attribute split over a digit image source (groups g = 2y + a).

    Subclasses give the class rule (:meth:`classify`), the renderer (:meth:`render`), the training group
    counts (:meth:`train_counts`), the eval policy (``natural`` or ``balanced``) and the names; options
    ``val_size`` and ``test_size`` set the eval split sizes. ``adj_acc`` (Waterbirds' adjusted average,
    weighted by training group proportions) is reported when ``report_adj_acc`` is set.
    """

    eval_policy: ClassVar[str] = "natural"
    # The look sets how hard the class is next to the attribute (a colour shift, learnt within an epoch).
    # Measured with the default budget: a ±2-pixel shift makes the digit so slow to learn that ERM ignores it
    # on waterbirds-style at scale 0.5 (worst group ~0%); no shift makes it so easy that celeba-style's ERM
    # has no gap (97% worst group). celeba-style's grey background (0.2-0.4) was tuned the same way.
    digit_size: ClassVar[int] = 16  # the 8×8 digit is upsampled to this size (pixels) ...
    shift: ClassVar[int] = 1  # ... and moved by up to this many pixels along each axis, per sample
    opacity: ClassVar[float] = 1.0  # of the stroke over the background: the class signal's strength
    pattern: ClassVar[float] = 0.04  # amplitude of the background pattern (blotches, waves)
    grain: ClassVar[float] = 0.01  # std of per-pixel background noise
    report_adj_acc: ClassVar[bool] = False
    class_names: ClassVar[list[str]] = ["y0", "y1"]
    attr_names: ClassVar[list[str]] = ["a0", "a1"]

    @staticmethod
    def source() -> tuple[np.ndarray, np.ndarray]:
        """The base images (n×8×8 in [0, 1]) and their digit labels."""
        return sklearn_digits()

    def classify(self, digits: np.ndarray) -> np.ndarray:
        """Class y ∈ {0, 1} of each digit label."""
        raise NotImplementedError

    def render(self, images: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """RGB images (n×3×SIZE×SIZE in [0, 1]) of ``images`` showing attribute ``a``."""
        raise NotImplementedError

    def train_counts(self, options: dict) -> np.ndarray:
        """Training samples per group (length 4, g = 2y + a)."""
        raise NotImplementedError

    def split_counts(self, options: dict, sources: np.ndarray) -> np.ndarray:
        """Samples per split × group (3×4); rejects options that leave a group with too few samples.

        ``sources`` (3×2) counts the distinct source digits of each class in each split: with the option
        ``eval_group_floor`` F (0 when the dataset has none), every val and test group gets at least
        min(F, its class's distinct sources) samples, each from a different source digit.
        """
        train = self.train_counts(options)
        floors = np.minimum(options.get("eval_group_floor", 0), np.repeat(sources, 2, axis=1))
        counts = np.stack(
            [
                train,
                *(
                    eval_counts(train, self.eval_policy, options[key], floors[split])
                    for split, key in ((1, "val_size"), (2, "test_size"))
                ),
            ]
        )
        if counts.min() < 1 or counts[2].min() < MIN_TEST_GROUP:
            raise BenchError(
                f"dataset {self.name}: options give group counts {counts.tolist()} (train/val/test); every "
                f"group needs a sample in every split and {MIN_TEST_GROUP} in test: raise the sizes"
            )
        return counts

    def plan(self, options: dict) -> Plan:
        """Source image, class, attribute and split of every sample, from the options and data seed."""
        rng = np.random.default_rng([options["seed"], 0x5B1D])
        _, digits = self.source()
        part = stratified_parts(digits, SOURCE_FRACTIONS, rng)
        source_class = self.classify(digits)
        distinct = np.array([np.bincount(source_class[part == split], minlength=2) for split in range(3)])
        sources, ys, attrs, splits = [], [], [], []
        for split, row in enumerate(self.split_counts(options, distinct)):
            for g, n in enumerate(row.tolist()):
                pool = rng.permutation(np.flatnonzero((part == split) & (source_class == g // 2)))
                sources.append(np.resize(pool, n))  # each source image used ⌊n/|pool|⌋ or ⌈n/|pool|⌉ times
                ys.append(np.full(n, g // 2))
                attrs.append(np.full(n, g % 2))
                splits.append(np.full(n, split))
        return Plan(*(np.concatenate(v).astype(np.int64) for v in (sources, ys, attrs, splits)))

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        plan = self.plan(options)
        images, _ = self.source()
        x = self.render(images[plan.source], plan.a, np.random.default_rng([options["seed"], 0x9A17]))
        g = 2 * plan.y + plan.a
        group_names = [f"{c},{a}" for c in self.class_names for a in self.attr_names]
        train = np.bincount(g[plan.split == 0], minlength=4)
        summaries = {"adj_acc": (train / train.sum()).tolist()} if self.report_adj_acc else {}
        return GroupDataset(
            name=self.name,
            spaces=[FeatureSpace("rgb16", "image", x.contiguous())],
            space=torch.zeros(len(g), dtype=torch.int64),
            row=torch.arange(len(g)),
            y=torch.from_numpy(plan.y),
            a=torch.from_numpy(plan.a),
            g=torch.from_numpy(g),
            split_code=torch.from_numpy(plan.split),
            class_names=list(self.class_names),
            attr_names=list(self.attr_names),
            group_names=group_names,
            description=self.description,
            summaries=summaries,
        )
