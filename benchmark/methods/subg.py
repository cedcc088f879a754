"""``subg``: ERM on a group-balanced subset of the training set (Idrissi, Arjovsky, Pezeshki & Lopez-Paz, *Simple
data balancing achieves competitive worst-group-accuracy*, CLeaR 2022)."""

from __future__ import annotations

from benchmark.core.registry import register_method
from benchmark.methods.balancing import Subsampled


@register_method("subg")
class SUBG(Subsampled):
    """Once per run, a uniformly random subset of the training set with every group at the size of the smallest
    group (the run's generator draws it), then ERM on that subset (uniform shuffling of it) for the run's whole
    step budget: ``train.epochs`` × ⌈n_train / batch size⌉ steps, so a pass over the subset is only a sampler
    cycle, not an epoch of the budget (the paper trains a number of epochs of the subset instead). The stage's
    facts record the subset's size and its size per group. No hyperparameters of its own. Reads training group
    labels (to draw the subset)."""

    balance = "group"
    needs_group_labels = True
