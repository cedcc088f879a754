"""``suby``: ERM on a class-balanced subset of the training set (Idrissi, Arjovsky, Pezeshki & Lopez-Paz, *Simple
data balancing achieves competitive worst-group-accuracy*, CLeaR 2022)."""

from __future__ import annotations

from benchmark.core.registry import register_method
from benchmark.methods.balancing import Subsampled


@register_method("suby")
class SUBY(Subsampled):
    """Once per run, a uniformly random subset of the training set with every class at the size of the smallest
    class present in training (the run's generator draws it), then ERM on that subset (uniform shuffling of it)
    for the run's whole step budget: ``train.epochs`` × ⌈n_train / batch size⌉ steps, so a pass over the subset is
    only a sampler cycle, not an epoch of the budget (the paper trains a number of epochs of the subset instead).
    The stage's facts record the subset's size and its size per class. No hyperparameters of its own. Uses class
    labels only."""

    balance = "class"
