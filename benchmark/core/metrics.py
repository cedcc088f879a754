"""Group metrics, all in percent: per-group accuracy, wga, bga, delta_acc, acc, mean_group_acc.

A group absent from a split is reported as ``None`` (missing), never as 0 or 100, and is left out of
the worst/best/mean over groups.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

HEADLINE = ("wga", "bga", "delta_acc", "acc", "mean_group_acc")
HIGHER_IS_BETTER = {"wga": True, "bga": True, "delta_acc": False, "acc": True, "mean_group_acc": True}


def group_metrics(
    correct: Sequence[float],
    total: Sequence[float],
    group_names: Sequence[str],
    summaries: Mapping[str, Sequence[float]] | None = None,
) -> dict:
    """Metrics from per-group correct and total counts.

    Each entry of ``summaries`` adds a metric: the mean of the present groups' accuracies weighted by
    its per-group weights (None when no weighted group is present), e.g. ``adj_acc`` or ``many``.
    """
    correct, total = np.asarray(correct, dtype=np.float64), np.asarray(total, dtype=np.float64)
    present = total > 0
    acc_per_group = np.where(present, 100.0 * correct / np.maximum(total, 1), np.nan)
    groups = {name: (float(v) if p else None) for name, v, p in zip(group_names, acc_per_group, present)}
    if not present.any():
        return {**{k: None for k in (*HEADLINE, *(summaries or {}))}, "groups": groups}
    observed = acc_per_group[present]
    wga, bga = float(observed.min()), float(observed.max())
    metrics = {
        "wga": wga,
        "bga": bga,
        "delta_acc": bga - wga,
        "acc": float(100.0 * correct.sum() / total.sum()),
        "mean_group_acc": float(np.clip(observed.mean(), wga, bga)),  # a float mean of equal values may round out
    }
    for name, weights in (summaries or {}).items():
        w = np.where(present, np.asarray(weights, dtype=np.float64), 0.0)
        metrics[name] = float((w * np.nan_to_num(acc_per_group)).sum() / w.sum()) if w.sum() > 0 else None
    return {**metrics, "groups": groups}


def class_metrics(correct: Sequence[float], total: Sequence[float], class_names: Sequence[str]) -> dict:
    """Class-wise metrics from per-class correct and total counts: ``wca``, the worst accuracy over the classes
    present (SubpopBench's worst-class accuracy, which needs no group labels), and ``classes`` (accuracy per class
    in percent; None for a class absent from the split)."""
    correct, total = np.asarray(correct, dtype=np.float64), np.asarray(total, dtype=np.float64)
    present = total > 0
    accuracy = np.where(present, 100.0 * correct / np.maximum(total, 1), np.nan)
    classes = {name: (float(v) if p else None) for name, v, p in zip(class_names, accuracy, present)}
    return {"wca": float(accuracy[present].min()) if present.any() else None, "classes": classes}
