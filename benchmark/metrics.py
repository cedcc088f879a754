"""Group metrics, all in percent: per-group accuracy, wga, bga, delta_acc, acc, mean_group_acc.

A group absent from a split is reported as ``None`` (missing), never as 0 or 100, and is left out of
the worst/best/mean over groups.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

HEADLINE = ("wga", "bga", "delta_acc", "acc", "mean_group_acc")
HIGHER_IS_BETTER = {"wga": True, "bga": True, "delta_acc": False, "acc": True, "mean_group_acc": True}


def group_metrics(correct: Sequence[float], total: Sequence[float], group_names: Sequence[str]) -> dict:
    """Metrics from per-group correct and total counts."""
    correct, total = np.asarray(correct, dtype=np.float64), np.asarray(total, dtype=np.float64)
    present = total > 0
    acc_per_group = np.where(present, 100.0 * correct / np.maximum(total, 1), np.nan)
    groups = {name: (float(v) if p else None) for name, v, p in zip(group_names, acc_per_group, present)}
    if not present.any():
        return {"groups": groups, **{k: None for k in HEADLINE}}
    observed = acc_per_group[present]
    wga, bga = float(observed.min()), float(observed.max())
    return {
        "wga": wga,
        "bga": bga,
        "delta_acc": bga - wga,
        "acc": float(100.0 * correct.sum() / total.sum()),
        "mean_group_acc": float(observed.mean()),
        "groups": groups,
    }
