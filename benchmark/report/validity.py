"""Validity diagnostics of a dataset as a benchmark of group robustness, after Bell, Bouchacourt & Sagun,
"Reassessing the Validity of Spurious Correlations Benchmarks" (arXiv 2409.04188).

What follows the paper: its three desiderata and their names. ERM should fail on the benchmark (*ERM failure*),
the benchmark should tell methods apart (*discriminative power*), and benchmarks of the same problem should rank
methods alike (*convergent validity*).

What is this project's decision: the exact statistics, since the paper's own definitions were not at hand (only
its abstract and a summary of its reviews, which says it quantifies ERM failure with a Bayes factor; that is not
done here):

- ERM failure: per seed of the leaderboard's first ERM row (its chosen trial, the row the daggers test against),
  test accuracy minus test worst-group accuracy, in points; the mean over seeds with a 95% percentile bootstrap
  interval (:func:`benchmark.report.stats.bootstrap_ci`). ERM fails when the interval lies above 0 and the mean gap is
  at least ``MIN_GAP`` points; with one seed (no interval) and a larger gap it is undecided.
- Discriminative power: every pair of leaderboard rows, tested two-sided on test WGA over seeds: a paired t-test
  on the seeds both share when they share at least two, else Welch's t-test; Holm–Bonferroni over all pairs at
  α = 0.05. A pair that cannot be tested (a row with one seed, no variance at all) counts as p = 1.
- Minimum detectable difference: the pooled standard deviation over seeds of the pairs' paired differences in
  test WGA (``pair_sd``), and the smallest true difference a paired t-test finds with 80% power at Holm's strictest
  level (α over the number of pairs, what the first pair must pass) with the seeds used (``mdd``), with 3 seeds
  (``mdd_3``) and with 10 (``mdd_10``) (:func:`benchmark.report.stats.detectable_difference`). It assumes every pair
  varies as the pooled one does.
- Convergent validity: Kendall's tau-b between two datasets' mean test WGA over the rows both have (by label),
  when they share at least two (else n/a); the mean over the pairs of datasets where it is defined.

The files (:mod:`benchmark.report.validity_files`): per dataset ``validity.csv`` (one row) and ``validity.md``
(with every pair's test); over several datasets ``validity.csv`` (one row per dataset, with ``tau_vs_<dataset>``
columns) and ``validity.md`` (with Kendall's tau per pair of datasets).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, ttest_ind

from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.report.applicability import NOT_APPLICABLE
from benchmark.report.frames import ALPHA, BASELINE, headline
from benchmark.report.stats import bootstrap_ci, detectable_difference, paired_ttest

MIN_GAP = 5.0  # points of test accuracy minus WGA below which ERM does not fail (this project's threshold)
PAIR_COLUMNS = ["a", "b", "test", "seeds", "diff", "p", "p_holm", "significant"]
TAU_COLUMNS = ["dataset_a", "dataset_b", "shared", "tau", "p"]
CITATION = "after Bell, Bouchacourt & Sagun, arXiv 2409.04188"
NAN = float("nan")


def erm_failure(runs: pd.DataFrame, label: str = BASELINE) -> dict:
    """ERM failure from the runs of ERM's leaderboard row (``test_acc``, ``test_wga``; one per seed): the mean gap
    acc − wga in points, its 95% bootstrap interval, the seeds, ``erm_fails`` (yes, no, undecided or n/a) and the
    reason (``erm_note``). No runs: n/a."""
    gaps = (runs["test_acc"] - runs["test_wga"]).dropna() if len(runs) else pd.Series(dtype=float)
    if gaps.empty:
        note = "no ERM row on the leaderboard" if runs.empty else "ERM's runs record no test WGA"
        return {"erm_label": "", "erm_seeds": 0, "erm_gap_mean": NAN, "erm_gap_ci_low": NAN,
                "erm_gap_ci_high": NAN, "erm_fails": "n/a", "erm_note": note}  # fmt: skip
    mean, (low, high) = float(gaps.mean()), bootstrap_ci(gaps)
    reasons = [f"gap under {MIN_GAP:g} points"] if mean < MIN_GAP else []
    if low == low and low <= 0:
        reasons.insert(0, "interval includes 0")
    if reasons:
        fails, note = "no", "; ".join(reasons)
    elif low != low:
        fails, note = "undecided", "one seed: no interval"
    else:
        fails, note = "yes", ""
    return {"erm_label": label, "erm_seeds": int(len(gaps)), "erm_gap_mean": mean, "erm_gap_ci_low": low,
            "erm_gap_ci_high": high, "erm_fails": fails, "erm_note": note}  # fmt: skip


def row_runs(runs: pd.DataFrame, board: pd.DataFrame) -> list[pd.DataFrame]:
    """The runs of each row of ``board``, in its order, joined on (dataset, method, family_id)."""
    grouped = {key: rows for key, rows in runs.groupby(KEYS, sort=False)}
    return [grouped.get(tuple(key), runs.iloc[:0]) for key in board[KEYS].itertuples(index=False)]


def metric_by_seed(runs: pd.DataFrame, board: pd.DataFrame, metric: str | None = None) -> list[pd.Series]:
    """Each board row's test ``metric`` (by default the :func:`~benchmark.report.frames.headline` one) by seed."""
    tested = f"test_{metric or headline(runs.columns)}"
    return [rows.groupby("seed")[tested].mean().dropna() for rows in row_runs(runs, board)]


def pair_test(a: pd.Series, b: pd.Series) -> tuple[str, str, float, float]:
    """(test, seeds, mean difference a − b, two-sided p) of two rows' test metric indexed by seed: a paired t-test on
    the shared seeds when there are at least two, else Welch's t-test; test ``none`` and p nan when neither
    can be computed."""
    paired = paired_ttest(a, b)
    if paired is not None:
        return "paired", f"{paired.n} shared", paired.diff, paired.pvalue
    seeds, diff = f"{len(a)} vs {len(b)}", float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return "none", seeds, diff, NAN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no variance: scipy warns, p is nan
        return "welch", seeds, diff, float(ttest_ind(a.to_numpy(), b.to_numpy(), equal_var=False).pvalue)


def holm(pvalues, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm–Bonferroni over ``pvalues`` (nan counts as 1): the adjusted p-values and which are rejected at
    ``alpha`` (those whose adjusted p is at most ``alpha``, the step-down rule)."""
    p = np.nan_to_num(np.asarray(pvalues, dtype=np.float64), nan=1.0)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(len(p))
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order]))
    return adjusted, adjusted <= alpha


def pair_tests(
    runs: pd.DataFrame, board: pd.DataFrame, alpha: float = ALPHA, metric: str | None = None
) -> pd.DataFrame:
    """Every pair of board rows (labels ``a``, ``b``) tested on the test ``metric`` (by default the
    :func:`~benchmark.report.frames.headline` one) over seeds (:func:`pair_test`), with Holm-adjusted p-values over
    the pairs (``p_holm``) and ``significant`` at ``alpha``."""
    seeds = metric_by_seed(runs, board, metric)
    labels = list(board["label"])
    rows = [(labels[i], labels[j], *pair_test(a, b)) for (i, a), (j, b) in itertools.combinations(enumerate(seeds), 2)]
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS[:6]).astype({"diff": float, "p": float})
    adjusted, significant = holm(pairs["p"], alpha)
    return pairs.assign(p_holm=adjusted, significant=significant.astype(bool))


def power_summary(pairs: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """Discriminative power from :func:`pair_tests`: pairs, untestable pairs, significant pairs and their share
    (nan without pairs)."""
    n, hits = len(pairs), int(pairs["significant"].sum())
    return {"pairs": n, "pairs_untestable": int(pairs["p"].isna().sum()), "pairs_significant": hits,
            "significant_fraction": hits / n if n else NAN, "alpha": alpha}  # fmt: skip


POWER = 0.8  # of the minimum detectable difference
MDD_SEEDS = (3, 10)  # seeds at which the minimum detectable difference is also reported


def paired_spread(runs: pd.DataFrame, board: pd.DataFrame, metric: str | None = None) -> tuple[float, int]:
    """The pooled standard deviation over seeds of every pair of rows' paired differences in the test ``metric``
    (by default the headline one; the pairs with at least two shared seeds, each weighted by its degrees of
    freedom), and the seeds most rows have; nan without such a pair."""
    seeds = metric_by_seed(runs, board, metric)
    squares = dof = 0.0
    for a, b in itertools.combinations(seeds, 2):
        shared = a.index.intersection(b.index)
        if len(shared) >= 2:
            squares += float((a.loc[shared] - b.loc[shared]).var(ddof=1)) * (len(shared) - 1)
            dof += len(shared) - 1
    counts = pd.Series([len(s) for s in seeds], dtype=int)
    return (float(np.sqrt(squares / dof)) if dof else NAN), int(counts.mode().max()) if len(counts) else 0


def detectable(runs: pd.DataFrame, board: pd.DataFrame, pairs: int, alpha: float = ALPHA) -> dict:
    """The minimum detectable differences (module docstring): ``pair_sd``, ``seeds`` (most rows'), ``mdd`` at those
    seeds and ``mdd_<n>`` at each of :data:`MDD_SEEDS`, at level ``alpha`` / ``pairs``."""
    sd, seeds = paired_spread(runs, board)
    level = alpha / max(pairs, 1)
    found = {"pair_sd": sd, "seeds": seeds, "mdd": detectable_difference(sd, seeds, level, POWER)}
    return found | {f"mdd_{n}": detectable_difference(sd, n, level, POWER) for n in MDD_SEEDS}


def dataset_validity(dataset: str, runs: pd.DataFrame, board: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """One dataset's figures (ERM failure of the board's first ERM row, discriminative power; one flat row) and its
    pair tests, over the rows of methods that were applicable (a row with no number is no pair)."""
    if NOT_APPLICABLE in board:
        board = board[board[NOT_APPLICABLE].isna()].reset_index(drop=True)
    erm = np.flatnonzero(board["method"] == BASELINE)[:1]
    erm_runs = row_runs(runs, board.iloc[erm])[0] if len(erm) else runs.iloc[:0]
    label = board["label"].iloc[erm[0]] if len(erm) else ""
    pairs = pair_tests(runs, board)
    summary = {"dataset": dataset, **erm_failure(erm_runs, label), "rows": len(board), "metric": headline(runs.columns),
               **power_summary(pairs)}  # fmt: skip
    return summary | detectable(runs, board, len(pairs)), pairs


def convergent_validity(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per pair of datasets: the rows both boards have (by label, ``shared``) and Kendall's tau-b between their mean
    test headline metric there (:func:`~benchmark.report.frames.headline`: WGA, or balanced accuracy on a
    long-tailed dataset), with its p-value; tau and p nan with fewer than two shared rows."""
    means = {
        name: board.set_index("label")[f"{headline(board.columns)}_mean"].dropna() for name, board in boards.items()
    }
    rows = []
    for a, b in itertools.combinations(means, 2):
        shared = means[a].index.intersection(means[b].index)
        tau = p = NAN
        if len(shared) >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a constant ranking: scipy warns, tau is nan
                tau, p = kendalltau(means[a].loc[shared], means[b].loc[shared])
        rows.append((a, b, len(shared), float(tau), float(p)))
    return pd.DataFrame(rows, columns=TAU_COLUMNS)


def mean_tau(taus: pd.DataFrame) -> float:
    """The mean Kendall tau over the pairs of datasets where it is defined (nan where none is)."""
    defined = taus["tau"].dropna()
    return float(defined.mean()) if len(defined) else NAN
