"""The validity diagnostics (:mod:`benchmark.report.validity`) as text and files: the summary sentences, the
figures, pair and tau tables, and ``validity.{csv,md}`` per dataset and over several datasets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.report.formats import MARKDOWN, markdown
from benchmark.report.frames import HEADLINE_NAMES
from benchmark.report.validity import CITATION, MDD_SEEDS, NAN, convergent_validity, mean_tau


def detectable_text(points: float, precision: int) -> str:
    """A minimum detectable difference in points of accuracy: above 100 no difference of accuracies is detectable."""
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
    metric = HEADLINE_NAMES[summary.get("metric", "wga")]
    if not summary["pairs"]:
        return [erm, "Discriminative power: n/a (fewer than two rows on the leaderboard)."]
    power = (
        f"Discriminative power: {summary['pairs_significant']} of {summary['pairs']} pairs of rows differ in test "
        f"{metric} over seeds (two-sided t-tests, Holm–Bonferroni at α = {summary['alpha']:g}): "
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
            f" Minimum detectable difference in {metric} (80% power, paired t-test at Holm's strictest level "
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


def pair_rows(pairs: pd.DataFrame, precision: int, metric: str = "WGA"):
    """Header and Markdown rows of the pair tests."""
    header = ["Row A", "Row B", "Test", "Seeds", f"A − B ({metric})", "p", "Holm p", "Significant"]
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


def headline_text(summaries: dict[str, dict]) -> str:
    """What the datasets' rankings are by: WGA, and the long-tailed datasets' balanced accuracy by name."""
    other = {name: s["metric"] for name, s in summaries.items() if s.get("metric", "wga") != "wga"}
    metrics = dict.fromkeys(other.values())
    named = "; ".join(f"{HEADLINE_NAMES[m]} on {', '.join(n for n in other if other[n] == m)}" for m in metrics)
    return "WGA" + (f", {named}" if named else "")


def write_dataset_validity(folder: Path, summary: dict, pairs: pd.DataFrame, formats, precision: int = 1) -> None:
    """``folder/validity.csv`` (``csv`` in ``formats``) and ``folder/validity.md`` (``md``) of one dataset."""
    if "csv" in formats:
        pd.DataFrame([summary]).to_csv(folder / "validity.csv", index=False, float_format="%.4f")
    if "md" in formats:
        lines = [f"Validity diagnostics of {summary['dataset']} as a benchmark ({CITATION}):", ""]
        lines += [f"- {line}" for line in summary_lines(summary, precision)] + [""]
        lines += markdown(*figures_rows([summary], precision))
        if len(pairs):
            metric = HEADLINE_NAMES[summary["metric"]]
            lines += ["", f"Pairs of rows, test {metric} over seeds (Holm–Bonferroni over {len(pairs)} pairs):", ""]
            lines += markdown(*pair_rows(pairs, precision, metric))
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
                  f"(by mean test {headline_text(summaries)}; n/a with fewer than two shared rows):", ""]  # fmt: skip
        lines += markdown(*tau_rows(taus))
        lines += ["", f"Mean Kendall τ over pairs of datasets: {'n/a' if average != average else f'{average:.3f}'}."]
        (out / "validity.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return taus
