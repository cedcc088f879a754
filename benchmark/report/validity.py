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

Per dataset ``validity.csv`` (one row) and ``validity.md`` (with every pair's test); over several datasets
``validity.csv`` (one row per dataset, with ``tau_vs_<dataset>`` columns) and ``validity.md`` (with Kendall's tau
per pair of datasets).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau, ttest_ind

from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.report.formats import MARKDOWN, markdown
from benchmark.report.frames import ALPHA, BASELINE, TESTED
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
    gaps = (runs["test_acc"] - runs[f"test_{TESTED}"]).dropna() if len(runs) else pd.Series(dtype=float)
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


def pair_test(a: pd.Series, b: pd.Series) -> tuple[str, str, float, float]:
    """(test, seeds, mean difference a − b, two-sided p) of two rows' test WGA indexed by seed: a paired t-test on
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


def pair_tests(runs: pd.DataFrame, board: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Every pair of board rows (labels ``a``, ``b``) tested on test WGA over seeds (:func:`pair_test`), with
    Holm-adjusted p-values over the pairs (``p_holm``) and ``significant`` at ``alpha``."""
    seeds = [rows.groupby("seed")[f"test_{TESTED}"].mean().dropna() for rows in row_runs(runs, board)]
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


def paired_spread(runs: pd.DataFrame, board: pd.DataFrame) -> tuple[float, int]:
    """The pooled standard deviation over seeds of every pair of rows' paired differences in test WGA (the pairs
    with at least two shared seeds, each weighted by its degrees of freedom), and the seeds most rows have; nan
    without such a pair."""
    seeds = [rows.groupby("seed")[f"test_{TESTED}"].mean().dropna() for rows in row_runs(runs, board)]
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


def discriminative_power(runs: pd.DataFrame, board: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """How many pairs of board rows differ significantly in test WGA over seeds (Holm-corrected at ``alpha``)."""
    return power_summary(pair_tests(runs, board, alpha), alpha)


def dataset_validity(dataset: str, runs: pd.DataFrame, board: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """One dataset's figures (ERM failure of the board's first ERM row, discriminative power; one flat row) and its
    pair tests."""
    erm = np.flatnonzero(board["method"] == BASELINE)[:1]
    erm_runs = row_runs(runs, board.iloc[erm])[0] if len(erm) else runs.iloc[:0]
    label = board["label"].iloc[erm[0]] if len(erm) else ""
    pairs = pair_tests(runs, board)
    summary = {"dataset": dataset, **erm_failure(erm_runs, label), "rows": len(board), **power_summary(pairs)}
    return summary | detectable(runs, board, len(pairs)), pairs


def convergent_validity(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per pair of datasets: the rows both boards have (by label, ``shared``) and Kendall's tau-b between their mean
    test WGA there, with its p-value; tau and p nan with fewer than two shared rows."""
    means = {name: board.set_index("label")[f"{TESTED}_mean"].dropna() for name, board in boards.items()}
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


def detectable_text(points: float, precision: int) -> str:
    """A minimum detectable difference in WGA points: above 100 no difference of accuracies is detectable."""
    return "> 100" if points > 100 else number(points, precision)


def number(value: float, precision: int) -> str:
    """``value`` to ``precision`` decimals, or – for nan."""
    return "–" if value != value else f"{value:.{precision}f}"


def interval(low: float, high: float, precision: int) -> str:
    """``[low, high]``, or – without an interval."""
    return "–" if low != low else f"[{low:.{precision}f}, {high:.{precision}f}]"


def summary_lines(summary: dict, precision: int = 1) -> list[str]:
    """Plain-text sentences on a dataset's ERM failure and discriminative power (for Markdown and HTML)."""
    if summary["erm_fails"] == "n/a":
        erm = f"ERM failure: n/a ({summary['erm_note']})."
    else:
        verdict = {
            "yes": "ERM fails, which a dataset needs to rank robustness methods (whether it does: see below)",
            "no": f"ERM does not clearly fail ({summary['erm_note']}), so the dataset cannot rank robustness methods",
            "undecided": f"undecided ({summary['erm_note']})",
        }[summary["erm_fails"]]
        erm = (
            f"ERM failure: {summary['erm_label']}'s test accuracy minus worst-group accuracy is "
            f"{summary['erm_gap_mean']:.{precision}f} points (mean over {summary['erm_seeds']} seeds, 95% bootstrap "
            f"interval {interval(summary['erm_gap_ci_low'], summary['erm_gap_ci_high'], precision)}): {verdict}."
        )
    if not summary["pairs"]:
        return [erm, "Discriminative power: n/a (fewer than two rows on the leaderboard)."]
    power = (
        f"Discriminative power: {summary['pairs_significant']} of {summary['pairs']} pairs of rows differ in test "
        f"WGA over seeds (two-sided t-tests, Holm–Bonferroni at α = {summary['alpha']:g}): "
        f"{summary['significant_fraction']:.0%}."
    )
    if summary["pairs_untestable"]:
        power += (
            f" {summary['pairs_untestable']} pair(s) could not be tested (a row with one seed, or no variance)"
            " and count as p = 1."
        )
    if pd.notna(summary.get("mdd", NAN)):
        mdd = [f"{detectable_text(summary[f'mdd_{n}'], precision)} with {n}" for n in MDD_SEEDS]
        power += (
            f" Minimum detectable difference in WGA (80% power, paired t-test at Holm's strictest level "
            f"α / {summary['pairs']}, pooled SD of the paired differences {summary['pair_sd']:.{precision}f} points): "
            f"{detectable_text(summary['mdd'], precision)} points with the {summary['seeds']} seeds used; "
            f"{', '.join(mdd)} seeds."
        )
    return [erm, power]


def figures_rows(summaries: list[dict], precision: int):
    """Header and Markdown rows of the per-dataset figures."""
    header = ["Dataset", "ERM acc − WGA", "95% CI", "ERM seeds", "ERM fails", "Rows", "Pairs", "Significant", "Share"]
    header += ["Pair SD", "Seeds", "MDD", *(f"MDD {n} seeds" for n in MDD_SEEDS)]
    rows = []
    for s in summaries:
        share = "–" if not s["pairs"] else f"{s['significant_fraction']:.0%}"
        ci = interval(s["erm_gap_ci_low"], s["erm_gap_ci_high"], precision)
        cells = [s["dataset"], number(s["erm_gap_mean"], precision), ci, s["erm_seeds"], s["erm_fails"], s["rows"]]
        cells += [s["pairs"], s["pairs_significant"], share, number(s.get("pair_sd", NAN), precision)]
        cells += [s.get("seeds", "–")]
        cells += [detectable_text(s.get(key, NAN), precision) for key in ("mdd", *(f"mdd_{n}" for n in MDD_SEEDS))]
        rows.append([MARKDOWN.escape(str(c)) for c in cells])
    return header, rows


def pair_rows(pairs: pd.DataFrame, precision: int):
    """Header and Markdown rows of the pair tests."""
    header = ["Row A", "Row B", "Test", "Seeds", "A − B (WGA)", "p", "Holm p", "Significant"]
    rows = [
        [MARKDOWN.escape(r.a), MARKDOWN.escape(r.b), r.test, r.seeds, f"{r.diff:.{precision}f}",
         "–" if r.p != r.p else f"{r.p:.3g}", f"{r.p_holm:.3g}", "yes" if r.significant else "no"]
        for r in pairs.itertuples()
    ]  # fmt: skip
    return header, rows


def tau_rows(taus: pd.DataFrame):
    """Header and Markdown rows of Kendall's tau per pair of datasets."""
    header = ["Dataset A", "Dataset B", "Shared rows", "Kendall τ", "p"]
    rows = [
        [MARKDOWN.escape(r.dataset_a), MARKDOWN.escape(r.dataset_b), str(r.shared),
         "n/a" if r.tau != r.tau else f"{r.tau:.3f}", "–" if r.p != r.p else f"{r.p:.3g}"]
        for r in taus.itertuples()
    ]  # fmt: skip
    return header, rows


def write_dataset_validity(folder: Path, summary: dict, pairs: pd.DataFrame, formats, precision: int = 1) -> None:
    """``folder/validity.csv`` (``csv`` in ``formats``) and ``folder/validity.md`` (``md``) of one dataset."""
    if "csv" in formats:
        pd.DataFrame([summary]).to_csv(folder / "validity.csv", index=False, float_format="%.4f")
    if "md" in formats:
        lines = [f"Validity diagnostics of {summary['dataset']} as a benchmark ({CITATION}):", ""]
        lines += [f"- {line}" for line in summary_lines(summary, precision)] + [""]
        lines += markdown(*figures_rows([summary], precision))
        if len(pairs):
            lines += ["", f"Pairs of rows, test WGA over seeds (Holm–Bonferroni over {len(pairs)} pairs):", ""]
            lines += markdown(*pair_rows(pairs, precision))
        (folder / "validity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_combined_validity(
    out: Path, summaries: dict[str, dict], boards: dict[str, pd.DataFrame], formats, precision: int = 1
) -> pd.DataFrame:
    """``out/validity.csv`` (every dataset's figures and its Kendall tau against each other dataset) and
    ``out/validity.md`` (the figures, tau per pair of datasets and their mean); returns the tau table."""
    taus = convergent_validity(boards)
    if "csv" in formats:
        table = pd.DataFrame(list(summaries.values()))
        tau = {(r.dataset_a, r.dataset_b): r.tau for r in taus.itertuples()}
        tau.update({(b, a): value for (a, b), value in list(tau.items())})
        versus = [f"tau_vs_{other}" for other in boards]
        for other, column in zip(boards, versus):
            table[column] = [tau.get((name, other), NAN) for name in table["dataset"]]
        table["mean_tau_vs_others"] = table[versus].mean(axis=1)
        table.to_csv(out / "validity.csv", index=False, float_format="%.4f")
    if "md" in formats:
        average = mean_tau(taus)
        lines = [f"Validity diagnostics of each dataset as a benchmark ({CITATION}):", ""]
        lines += markdown(*figures_rows(list(summaries.values()), precision))
        lines += ["", "Convergent validity: Kendall's tau-b between the datasets' rankings of the rows both have",
                  "(by mean test WGA; n/a with fewer than two shared rows):", ""]  # fmt: skip
        lines += markdown(*tau_rows(taus))
        lines += ["", f"Mean Kendall τ over pairs of datasets: {'n/a' if average != average else f'{average:.3f}'}."]
        (out / "validity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return taus
