"""Statistics over seeds: a paired t-test against a baseline and percentile bootstrap confidence intervals.

Both are deterministic: the t-test has no randomness and the bootstrap draws from a fixed seed, so a report
regenerated from the same result.json files is identical.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import bootstrap, ttest_rel

BOOTSTRAP_SEED = 0
BOOTSTRAP_RESAMPLES = 10_000


class PairedTest(NamedTuple):
    pvalue: float  # two-sided; nan when undefined (every paired difference is zero)
    diff: float  # mean of a - b over the shared seeds
    n: int  # shared seeds


def paired_ttest(a: pd.Series, b: pd.Series) -> PairedTest | None:
    """Paired t-test of ``a`` against ``b`` (both indexed by seed) on the seeds where both have a value; None when
    fewer than two seeds are shared."""
    a, b = a.dropna(), b.dropna()
    shared = a.index.intersection(b.index).sort_values()
    if len(shared) < 2:
        return None
    x, y = a.loc[shared].to_numpy(np.float64), b.loc[shared].to_numpy(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant differences: scipy warns, t is ±inf or nan
        pvalue = float(ttest_rel(x, y).pvalue)
    return PairedTest(pvalue, float((x - y).mean()), len(shared))


def bootstrap_ci(
    values, level: float = 0.95, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` (missing values dropped):
    :func:`scipy.stats.bootstrap` with ``resamples`` resamples drawn from ``numpy.random.default_rng(seed)``;
    (nan, nan) with fewer than two values."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)  # passed as random_state: scipy < 1.15 (the project allows 1.10) has no rng
    ci = bootstrap((x,), np.mean, n_resamples=resamples, confidence_level=level, method="percentile", random_state=rng)
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


def wilson_interval(percent: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval (in percent) of an accuracy of ``percent`` measured on ``n`` samples; (nan, nan)
    when ``n`` < 1 or the accuracy is missing."""
    if n < 1 or percent != percent:
        return float("nan"), float("nan")
    p, z2 = percent / 100.0, z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return float(100 * min(p, centre - half)), float(100 * max(p, centre + half))  # at p = 0 or 1, despite rounding
