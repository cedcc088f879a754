"""``rwy``: ERM on class-reweighted batches (Idrissi, Arjovsky, Pezeshki & Lopez-Paz, *Simple data balancing achieves
competitive worst-group-accuracy*, CLeaR 2022)."""

from __future__ import annotations

from benchmark.core.registry import register_method
from benchmark.methods.balancing import Reweighted


@register_method("rwy")
class RWY(Reweighted):
    """ERM with batches drawn with replacement, each training sample with probability ∝ 1/n_c of its class, so
    every class present in training is equally likely per draw (the paper's weighted sampler; its cycle has n_train
    draws, cut into batches as ERM's epoch is, and the stage takes exactly the run's step budget). No
    hyperparameters of its own. Uses class labels only."""

    balance = "class"
