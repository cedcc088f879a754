"""Rows of a method that was not applicable: a run records why its method's premise failed (``not_applicable`` in
its result, docs/methods.md "Shared rules"); its test numbers are never shown, and a leaderboard row is one claim,
so a family with one such run is n/a on every seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.core.selection import FAMILY_KEYS as KEYS

NOT_APPLICABLE = "not_applicable"  # a run's reason why its method's premise failed (its test numbers never shown)
HIDDEN = ("test_", "group:", "class:")  # the test numbers of a run whose method was not applicable


def not_applicable_families(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` where every run of a (dataset, method, family) of which some run was not applicable is so too: the
    first reason on each, no test number (a leaderboard row is one claim, so it stands on all its seeds or none)."""
    if NOT_APPLICABLE not in runs:
        return runs
    reason = runs.groupby(KEYS, sort=False)[NOT_APPLICABLE].transform("first")
    runs = runs.assign(**{NOT_APPLICABLE: reason})
    runs.loc[reason.notna(), [c for c in runs if c.startswith(HIDDEN)]] = np.nan
    return runs
