"""``waterbirds-style``: scikit-learn digits on land or water backgrounds, with Waterbirds' training group counts.

A :class:`~benchmark.data.spurious_split.SpuriousBuilder` (the split machinery it shares with ``celeba-style``:
groups g = 2y + a, source images disjoint across splits) with its class rule, training group counts, eval policy
and renderer (:mod:`benchmark.data.spurious_render`). The background is much easier to learn than the class, as
in Waterbirds.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.core.registry import register_dataset
from benchmark.core.settings import Range
from benchmark.data.spurious_render import SIZE, blend, jitter, stroke_mask, texture, uniform
from benchmark.data.spurious_split import SpuriousBuilder, apportion

WATERBIRDS_TRAIN = (3498, 184, 56, 1057)  # Waterbirds train counts, groups (y,a) = (0,0), (0,1), (1,0), (1,1)


@register_dataset("waterbirds-style")
class WaterbirdsStyle(SpuriousBuilder):
    """y = digit ≥ 5 ("waterbird"); a = background: land texture (0) or water waves (1).

    Options: ``scale`` shrinks Waterbirds' training counts proportionally (1.0: 4795 samples); ``val_size``
    and ``test_size`` are the balanced eval splits (training class proportions, half of each class per a).
    """

    description = (
        "Waterbirds-style spurious split: scikit-learn digits painted on 3×16×16 backgrounds. The class is "
        "digit ≥ 5 ('waterbird'), the attribute the background: a brownish-green land texture or bluish water "
        "waves, both varying per sample. Training groups follow Waterbirds' counts (95% of each class on its "
        "own background; 56 of 4795 are waterbirds on land); val and test are balanced in the background within "
        "each class. Source digits are disjoint across splits. adj_acc weights groups by training proportions."
    )
    # scale 1.0: Waterbirds' exact counts. val and test 2400 each: every group has >= 278 samples drawn from >= 200
    # distinct source digits. 60 epochs: the budget rule holds (selected epochs 28, 55, 47 of 60; at 15 epochs ERM
    # selects its last epochs, 14, 14, 15, with val wga 42, 0, 3). The rule also holds at 25 and 40, by chance of
    # the noisy curves while two seeds still climb (best val wga 51 -> 66 from 40 to 60 epochs); 50 fails it:
    # python studies/budget_study.py --dataset waterbirds-style
    options = {"scale": 1.0, "val_size": 2400, "test_size": 2400}
    bounds = {"scale": Range(0, 100, low_open=True), "val_size": Range(4, 10**6), "test_size": Range(4, 10**6)}
    train_defaults = {"epochs": 60}
    eval_policy = "balanced"
    report_adj_acc = True
    class_names = ["landbird", "waterbird"]
    attr_names = ["land", "water"]

    def classify(self, digits: np.ndarray) -> np.ndarray:
        return (digits >= 5).astype(np.int64)

    def train_counts(self, options: dict) -> np.ndarray:
        return apportion(np.array(WATERBIRDS_TRAIN), round(sum(WATERBIRDS_TRAIN) * options["scale"]))

    def render(self, images: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        n = len(images)
        mix = uniform(rng, 0, 1, (n, 1))  # brown .. green
        land = jitter((0.50, 0.40, 0.22), n, rng, 0.04) * (1 - mix) + jitter((0.30, 0.45, 0.20), n, rng, 0.04) * mix
        land = land[:, :, None, None] + texture(n, rng, self.pattern, self.grain)
        freq = uniform(rng, 1.0, 2.5, (n, 1, 1, 1)) / SIZE
        angle = uniform(rng, -0.5, 0.5, (n, 1, 1, 1))
        phase = uniform(rng, 0, 2 * np.pi, (n, 1, 1, 1))
        grid = torch.arange(SIZE, dtype=torch.float32)
        along = grid[:, None] * torch.cos(angle) + grid[None, :] * torch.sin(angle)  # n×1×SIZE×SIZE
        waves = torch.sin(2 * np.pi * freq * along + phase) * torch.tensor([0.5, 0.8, 1.0])[:, None, None]
        water = (
            jitter((0.22, 0.40, 0.62), n, rng, 0.04)[:, :, None, None]
            + self.pattern * waves
            + texture(n, rng, 0, self.grain)
        )
        background = torch.where(torch.from_numpy(a == 1)[:, None, None, None], water, land)
        stroke = jitter((0.95, 0.95, 0.95), n, rng, 0.03)
        return blend(background, stroke_mask(images, rng, self.digit_size, self.shift, self.opacity), stroke)
