"""Statistics over seeds: a paired t-test against a baseline, the difference such a test can detect, and percentile
bootstrap confidence intervals.

All are deterministic: the t-test has no randomness and the bootstrap draws from a fixed seed, so a report
regenerated from the same result.json files is identical.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import bootstrap, nct, ttest_rel
from scipy.stats import t as student_t

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


def detectable_difference(sd: float, seeds: int, alpha: float, power: float = 0.8) -> float:
    """The smallest true mean difference that a two-sided paired t-test at level ``alpha`` over ``seeds`` seeds finds
    with probability ``power``, when the paired differences have standard deviation ``sd`` (exact, from the
    noncentral t distribution); nan with fewer than two seeds or an unknown ``sd``, 0 when ``sd`` is 0."""
    if seeds < 2 or sd != sd:
        return float("nan")
    if sd == 0:
        return 0.0
    df, scale = seeds - 1, np.sqrt(seeds) / sd
    critical = student_t.ppf(1 - alpha / 2, df)

    def shortfall(delta: float) -> float:
        ncp = delta * scale  # the far tail (a significant difference of the wrong sign) is ~0; scipy may say nan
        return nct.sf(critical, df, ncp) + np.nan_to_num(nct.cdf(-critical, df, ncp)) - power

    high = sd
    while shortfall(high) < 0:
        high *= 2
    return float(brentq(shortfall, 0.0, high, xtol=1e-9 * sd))


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
