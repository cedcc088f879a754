"""``rwg``: ERM on group-reweighted batches (Idrissi, Arjovsky, Pezeshki & Lopez-Paz, *Simple data balancing achieves
competitive worst-group-accuracy*, CLeaR 2022)."""

from __future__ import annotations

from benchmark.core.registry import register_method
from benchmark.methods.balancing import Reweighted


@register_method("rwg")
class RWG(Reweighted):
    """ERM with batches drawn with replacement, each training sample with probability ∝ 1/n_g of its group, so
    every group is equally likely per draw (the paper's weighted sampler; its cycle has n_train draws, cut into
    batches as ERM's epoch is, and the stage takes exactly the run's step budget). No hyperparameters of its own.
    Reads training group labels (to weight the draws)."""

    balance = "group"
    needs_group_labels = True
