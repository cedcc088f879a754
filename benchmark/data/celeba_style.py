"""``celeba-style``: scikit-learn digits with a warm or cool stroke tint, with CelebA's Blond × Male proportions.

A :class:`~benchmark.data.spurious_split.SpuriousBuilder` (the split machinery it shares with
``waterbirds-style``: groups g = 2y + a, source images disjoint across splits) with its class rule, training group
counts, eval policy and renderer (:mod:`benchmark.data.spurious_render`). The tint is much easier to learn than the
class, as the Male attribute is in CelebA.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from benchmark.core.registry import register_dataset
from benchmark.core.settings import Range
from benchmark.data.spurious_render import SIZE, blend, jitter, stroke_mask, texture, uniform
from benchmark.data.spurious_split import SpuriousBuilder, apportion

CELEBA_TRAIN = (71629, 66874, 22880, 1387)  # CelebA Blond_Hair × Male train counts, same group order

BLOND_DIGITS = (0, 1, 7)


@register_dataset("celeba-style")
class CelebAStyle(SpuriousBuilder):
    """y = digit in {0, 1, 7} ("blond"); a = stroke tint: warm (0, "female") or cool (1, "male").

    Options: ``train_size`` (CelebA's Blond × Male training proportions scaled to it); ``val_size`` and
    ``test_size`` keep the same natural proportions, and ``eval_group_floor`` then raises every val and test
    group to at least that many samples from distinct source digits, as far as the split's sources go.
    """

    description = (
        "CelebA-style spurious split: scikit-learn digits with a tinted stroke over a neutral grey 3×16×16 "
        "background. The class is the digit being 0, 1 or 7 ('blond'), the attribute the stroke tint: warm "
        "('female') or cool ('male'), jittered per sample. Training follows CelebA's Blond_Hair × Male "
        "proportions (blond males are 0.85%); val and test too, except that every group holds at least 200 "
        "samples, or one per distinct source digit where the split has fewer. Source digits are disjoint across "
        "splits."
    )
    # At CelebA's natural proportions the blond-male group would have 17 val and 34 test samples (one sample = 3
    # points). The 539 blond source digits give each eval split about 135, so with the floor every blond group
    # has ~135 distinct source digits in val and in test (one sample = 0.74 points) and blond-male is drawn once
    # from each; the dark groups exceed 200 anyway. Average accuracy then over-weights blond males a little
    # (3% of the test instead of 0.85%); the worst group is the headline.
    # 100 epochs: ERM's val worst-group accuracy has stopped rising by docs/datasets.md's rule (measured on the
    # natural-proportion val: selected epochs 77, 94, 61; nothing better by 120; at 15 epochs it is 0 in every
    # seed, at 60 still rising): python studies/budget_study.py --dataset celeba-style --epochs 120
    options = {"train_size": 4000, "val_size": 2000, "test_size": 4000, "eval_group_floor": 200}
    bounds = {
        "train_size": Range(4, 10**6),
        "val_size": Range(4, 10**6),
        "test_size": Range(4, 10**6),
        "eval_group_floor": Range(0, 10**6),
    }
    train_defaults = {"epochs": 100}
    eval_policy = "natural"
    grey: ClassVar[tuple[float, float]] = (0.2, 0.4)  # range of the background's grey level
    class_names = ["dark", "blond"]
    attr_names = ["female", "male"]

    def classify(self, digits: np.ndarray) -> np.ndarray:
        return np.isin(digits, BLOND_DIGITS).astype(np.int64)

    def train_counts(self, options: dict) -> np.ndarray:
        return apportion(np.array(CELEBA_TRAIN), options["train_size"])

    def render(self, images: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        n = len(images)
        grey = uniform(rng, *self.grey, (n, 1, 1, 1))
        background = grey + texture(n, rng, self.pattern, self.grain)
        warm, cool = jitter((1.0, 0.65, 0.35), n, rng, 0.06), jitter((0.35, 0.65, 1.0), n, rng, 0.06)
        stroke = torch.where(torch.from_numpy(a == 1)[:, None], cool, warm)
        return blend(
            background.expand(n, 3, SIZE, SIZE),
            stroke_mask(images, rng, self.digit_size, self.shift, self.opacity),
            stroke,
        )
