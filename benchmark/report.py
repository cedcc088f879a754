"""Reports from result.json files: leaderboards (mean ± std over seeds), per-group accuracy, compute cost,
a paired test against ERM, plots and a self-contained HTML page.

Each run's epoch and each method's hparam trial are (re-)selected with the requested rule
(:mod:`benchmark.selection`); one row per (dataset, method, sweep family) aggregates the seeds of the chosen
trial. Per dataset, ``out/<dataset>/`` gets, by format: ``csv``: ``leaderboard.csv`` (means, stds, bootstrap
CIs, p-values against ERM), ``groups.csv`` and ``cost.csv``; ``tex``: ``leaderboard.tex``, ``groups.tex`` and
``cost.tex`` (booktabs); ``md``: ``leaderboard.md`` with all three tables; ``png``: ``groups.png``,
``wga_vs_acc.png`` and ``curves.png``; ``html``: ``report.html``. Results over several datasets add
``out/combined.{csv,md,tex}``: worst-group accuracy of every method on every dataset.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark.errors import BenchError
from benchmark.selection import FAMILY_KEYS as KEYS
from benchmark.selection import select_epoch, select_trials, selection_score
from benchmark.stats import bootstrap_ci, paired_ttest, wilson_interval
from benchmark.tables import (
    HTML,
    LATEX,
    MARKDOWN,
    Style,
    cell,
    higher_is_better,
    html_table,
    latex,
    latex_file,
    markdown,
    ranked_column,
)

ORDER = ("wga", "acc", "delta_acc", "bga", "mean_group_acc")
COST = ("train_time_s", "steps_per_s", "peak_memory_mb")
COST_LABELS = {"train_time_s": "Train s", "steps_per_s": "Steps/s", "peak_memory_mb": "Peak MB"}
FORMATS = ("csv", "tex", "md", "png", "html")
DEFAULT_FORMATS = ("csv", "tex", "md")
PER_GROUP_DERIVED = ("live:", "n_test:", "wilson_low:", "wilson_high:")  # per-group columns beside the accuracies
BASELINE, TESTED, ALPHA = "erm", "wga", 0.05  # daggers: p < ALPHA against BASELINE on TESTED, better mean


def stage_steps(result: dict) -> str:
    """The optimizer steps of each stage of a run, e.g. ``identify 594 + upweighted 1782``."""
    return " + ".join(f"{stage['name']} {stage.get('steps', '?')}" for stage in result.get("stages", []))


def runs_frame(results: list[dict], select: str = "val-wga") -> pd.DataFrame:
    """One row per successful run at the epoch ``select`` picks from its history: identity, hparams (JSON),
    selection scores, test and val metrics (``test_*``, ``val_*``), test group accuracies (``group:*``), the
    share of live latent units per group on val (``live:*``, runs that record it), test group sizes
    (``n_test:*``), total and per-stage steps, cost."""
    rows = []
    for r in results:
        if r.get("status") != "ok":
            continue
        best = select_epoch(r["history"], select)
        row = {k: r[k] for k in ("dataset", "method", "family_id", "config_id", "run_id", "trial", "seed", *COST)}
        row["hparams"] = json.dumps(r["hparams"], sort_keys=True)
        row["select"], row["selected_epoch"] = select, best["epoch"]
        row["sel_score"], row["sel_tie"] = selection_score(best, select)
        row.update({f"test_{m}": v for m, v in best["test"].items() if m != "groups"})
        row.update({f"val_{m}": v for m, v in best["val"].items() if m != "groups"})
        row.update({f"group:{g}": acc for g, acc in best["test"]["groups"].items()})
        row.update({f"live:{g}": share for g, share in (best.get("live_units") or {}).items()})
        row.update({f"n_test:{g}": n for g, n in r.get("group_sizes", {}).get("test", {}).items()})
        row["steps"], row["stage_steps"] = r.get("steps"), stage_steps(r)
        rows.append(row)
    frame = pd.DataFrame(rows)
    numeric = [c for c in frame if c.startswith(("test_", "val_", "group:", "live:", "n_test:")) or c in COST]
    return frame.astype({c: float for c in numeric})  # a metric missing (None) in every run is NaN, not object


def ci_low(values: pd.Series) -> float:
    """Lower bound of the 95% bootstrap interval of the mean (named for the leaderboard's column)."""
    return bootstrap_ci(values)[0]


def ci_high(values: pd.Series) -> float:
    """Upper bound of the 95% bootstrap interval of the mean."""
    return bootstrap_ci(values)[1]


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and 95% bootstrap CI over seeds per (dataset, method, family) of the chosen trial's runs (see
    :func:`~benchmark.selection.select_trials`): columns ``<metric>_{mean,std,ci_low,ci_high}``, ``n_seeds``,
    ``select``, ``trials``, the chosen ``trial`` and its ``hparams``, the mean cost, and the paired test of wga
    against ERM (``wga_p_vs_erm``, ``wga_win_vs_erm``)."""
    metrics = [c for c in runs.columns if c.startswith("test_")]
    grouped = runs.groupby(KEYS, sort=False)
    board = grouped[metrics].agg(["mean", "std", ci_low, ci_high])
    board.columns = [f"{col[5:]}_{stat}" for col, stat in board.columns]
    board["n_seeds"] = grouped["seed"].nunique()
    for column in ("select", "trials", "trial", "hparams"):
        board[column] = grouped[column].first()
    for cost in COST:
        board[cost] = grouped[cost].mean()
    board = board.reset_index()
    repeated = board.duplicated(["dataset", "method"], keep=False)
    board.insert(
        2, "label", np.where(repeated, board["method"] + " [" + board["family_id"].str[:6] + "]", board["method"])
    )
    return paired_tests(board, runs)


def paired_tests(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Add the p-value of a paired t-test over shared seeds of each row against the first ERM row on test wga,
    and whether the row clearly wins (p < 0.05, better mean over those seeds). NaN/False without an ERM row."""
    seeds = [rows.set_index("seed")[f"test_{TESTED}"] for _, rows in runs.groupby(KEYS, sort=False)]
    baseline = np.flatnonzero(board["method"] == BASELINE)
    tests = [None] * len(board)
    if len(baseline):
        reference = seeds[baseline[0]]
        tests = [None if i == baseline[0] else paired_ttest(s, reference) for i, s in enumerate(seeds)]
    return board.assign(
        **{
            f"{TESTED}_p_vs_{BASELINE}": [np.nan if t is None else t.pvalue for t in tests],
            f"{TESTED}_win_vs_{BASELINE}": [t is not None and t.pvalue < ALPHA and t.diff > 0 for t in tests],
        }
    )


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, family) over the chosen trial's runs: the mean test accuracy of every group (columns
    named by the group), with the group's test size (``n_test:<group>``) and the Wilson 95% interval of that
    mean accuracy on that many samples (``wilson_low:<group>``, ``wilson_high:<group>``), and the mean share of
    live latent units on val (``live:<group>``), where the runs record them."""
    names = [c[len("group:") :] for c in runs.columns if c.startswith("group:")]
    columns = [c for c in runs.columns if c.startswith(("group:", "live:", "n_test:"))]
    table = runs.groupby(KEYS, sort=False)[columns].mean().reset_index()
    table = table.rename(columns={f"group:{g}": g for g in names})
    for g in names:
        if f"n_test:{g}" in table:
            sizes = table[f"n_test:{g}"].fillna(0).astype(int)  # 0 (no interval) for runs that did not record it
            bounds = [wilson_interval(acc, n) for acc, n in zip(table[g], sizes)]
            table[f"wilson_low:{g}"], table[f"wilson_high:{g}"] = zip(*bounds) if bounds else ((), ())
    return table


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, family): total optimizer steps and each stage's, and the mean and std over seeds of
    train time, steps/s and peak memory."""
    grouped = runs.groupby(KEYS, sort=False)
    table = grouped[list(COST)].agg(["mean", "std"])
    table.columns = [f"{col}_{stat}" for col, stat in table.columns]
    table.insert(0, "stage_steps", grouped["stage_steps"].first())
    table.insert(0, "steps", grouped["steps"].first())
    return table.reset_index()


def combined_table(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Worst-group accuracy (mean and std over seeds) of every method (row label) on every dataset: columns
    ``method``, then ``<dataset>_mean`` and ``<dataset>_std`` per dataset."""
    parts = [
        board.set_index("label")[["wga_mean", "wga_std"]].set_axis([f"{name}_mean", f"{name}_std"], axis=1)
        for name, board in boards.items()
    ]
    return pd.concat(parts, axis=1).rename_axis("method").reset_index()


def curves_frame(results: list[dict], runs: pd.DataFrame) -> pd.DataFrame:
    """Val worst-group accuracy at every evaluated epoch of the chosen runs: columns ``label``, ``seed``,
    ``epoch``, ``val_wga`` (``runs`` carries the label of each run)."""
    by_id = {r["run_id"]: r for r in results if r.get("status") == "ok"}
    rows = [
        {"label": run.label, "seed": run.seed, "epoch": record["epoch"], "val_wga": record["val"]["wga"]}
        for run in runs.itertuples()
        for record in by_id[run.run_id]["history"]
    ]
    return pd.DataFrame(rows).astype({"val_wga": float})


def shown_metrics(board: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """``columns`` that the board has, or by default the headline metrics then the dataset's extra summaries
    (adj_acc, many/medium/few) if any."""
    if columns:
        return [c for c in columns if f"{c}_mean" in board]
    extras = [c[: -len("_mean")] for c in board.columns if c.endswith("_mean") and c[: -len("_mean")] not in ORDER]
    return [*ORDER, *extras]


def leaderboard_rows(board: pd.DataFrame, style: Style, metrics: Sequence[str], precision: int):
    """Header and rows of the leaderboard: method, metrics (best bold, second underlined, daggers), seeds,
    trials."""
    header = ["Method", *map(style.header, metrics), "Seeds", "Trials"]
    wins = {TESTED: board[f"{TESTED}_win_vs_{BASELINE}"]}
    cells = [
        ranked_column(style, board[f"{m}_mean"], board[f"{m}_std"], higher_is_better(m), precision, wins.get(m))
        for m in metrics
    ]
    names, seeds, trials = map(style.escape, board["label"]), board["n_seeds"].astype(str), board["trials"].astype(str)
    return header, [list(row) for row in zip(names, *cells, seeds, trials)]


def group_names(groups: pd.DataFrame) -> list[str]:
    """The group columns of a :func:`group_table`."""
    return [c for c in groups.columns if c not in KEYS and not c.startswith(PER_GROUP_DERIVED)]


def group_rows(board: pd.DataFrame, groups: pd.DataFrame, style: Style, precision: int):
    """Header and rows of the per-group test accuracy table (best per group bold, second underlined): each group's
    test size in its header and the Wilson 95% interval after each accuracy when the runs record group sizes, then
    the share of live latent units per group (%, on val) when they record it."""
    names, header, cells = group_names(groups), [], []
    for g in names:
        column = ranked_column(style, groups[g], None, True, precision)
        if f"n_test:{g}" in groups:
            bounds = zip(groups[f"wilson_low:{g}"], groups[f"wilson_high:{g}"])
            column = [
                f"{text} [{lo:.{precision}f}, {hi:.{precision}f}]" if lo == lo else text
                for text, (lo, hi) in zip(column, bounds)
            ]
            header.append(f"{style.escape(g)} (n = {int(groups[f'n_test:{g}'].max())})")
        else:
            header.append(style.escape(g))
        cells.append(column)
    for g in names:
        if f"live:{g}" in groups:
            header.append(f"{style.escape(g)} live {style.escape('%')}")
            cells.append([cell(style, 100 * share, precision=0) for share in groups[f"live:{g}"]])
    return ["Method", *header], [list(row) for row in zip(map(style.escape, board["label"]), *cells)]


def cost_rows(board: pd.DataFrame, cost: pd.DataFrame, style: Style):
    """Header and rows of the compute-cost table: total optimizer steps, steps per stage, then mean ± std over
    seeds (one decimal) of time, steps/s and memory."""
    rows = [
        [
            style.escape(name),
            str(int(row["steps"])) if pd.notna(row["steps"]) else style.missing,
            style.escape(row["stage_steps"]),
            *(cell(style, row[f"{c}_mean"], row[f"{c}_std"]) for c in COST),
        ]
        for name, (_, row) in zip(board["label"], cost.iterrows())
    ]
    return ["Method", "Steps", "Steps per stage", *(COST_LABELS[c] for c in COST)], rows


def combined_rows(combined: pd.DataFrame, style: Style, precision: int):
    """Header and rows of the methods × datasets worst-group accuracy table."""
    datasets = [c[: -len("_mean")] for c in combined.columns if c.endswith("_mean")]
    cells = [ranked_column(style, combined[f"{d}_mean"], combined[f"{d}_std"], True, precision) for d in datasets]
    names = map(style.escape, combined["method"])
    header = ["Method", *(f"{style.escape(d)} {style.header('wga')}" for d in datasets)]
    return header, [list(row) for row in zip(names, *cells)]


def win_note(board: pd.DataFrame, style: Style) -> list[str]:
    """The line explaining the dagger, when some row was tested against ERM."""
    if board[f"{TESTED}_p_vs_{BASELINE}"].isna().all():
        return []
    p = "$p < 0.05$" if style is LATEX else style.escape("p < 0.05")
    return [f"{style.dagger} higher mean test WGA than {BASELINE}, paired t-test over shared seeds {p}"]


def to_markdown(board, groups, cost, metrics: Sequence[str], precision: int = 1) -> str:
    """The leaderboard, the per-group accuracy table and the compute-cost table in Markdown."""
    lines = markdown(*leaderboard_rows(board, MARKDOWN, metrics, precision))
    lines += ["", f"Model selection (epoch and hparam trial): {board['select'].iloc[0]}.", *win_note(board, MARKDOWN)]
    lines += ["", "Test accuracy per group (mean over seeds; [Wilson 95% interval] on the group's n test samples):", ""]
    lines += markdown(*group_rows(board, groups, MARKDOWN, precision))
    lines += ["", "Compute cost per run (mean ± std over seeds):", ""]
    lines += markdown(*cost_rows(board, cost, MARKDOWN))
    return "\n".join(lines) + "\n"


def to_latex(board, groups, cost, metrics: Sequence[str], precision: int = 1, standalone: bool = False) -> dict:
    """``leaderboard.tex``, ``groups.tex`` and ``cost.tex``: booktabs tabulars, or complete documents."""
    comments = [f"model selection (epoch and hparam trial): {board['select'].iloc[0]}"]
    header, rows = leaderboard_rows(board, LATEX, metrics, precision)
    group_header = group_rows(board, groups, LATEX, precision)[0]
    tables = {
        "leaderboard.tex": latex(header, rows, "l" + "c" * len(metrics) + "rr", win_note(board, LATEX)),
        "groups.tex": latex(*group_rows(board, groups, LATEX, precision), "l" + "c" * (len(group_header) - 1)),
        "cost.tex": latex(*cost_rows(board, cost, LATEX), "lrl" + "c" * len(COST)),
    }
    return {name: latex_file(tabular, comments, standalone) for name, tabular in tables.items()}


def to_html(dataset: str, board, groups, cost, images: dict[str, bytes], metrics, precision: int = 1) -> str:
    """One self-contained page: the three tables and the plots as base64 data: URIs."""
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for name, png in images.items()
    )
    title = HTML.escape(dataset)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}: bench report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ padding: 0.3em 0.8em; text-align: right; border-bottom: 1px solid #ccc; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>Test metrics (%), mean ± std over seeds. Model selection (epoch and hparam trial):
{HTML.escape(board["select"].iloc[0])}.</p>
<h2>Leaderboard</h2>
{html_table(*leaderboard_rows(board, HTML, metrics, precision))}
{"".join(f"<p>{note}</p>" for note in win_note(board, HTML))}
<h2>Test accuracy per group</h2>
{html_table(*group_rows(board, groups, HTML, precision))}
<h2>Compute cost per run</h2>
{html_table(*cost_rows(board, cost, HTML))}
<h2>Plots</h2>
{figures}
</body>
</html>
"""


def write_combined(boards: dict[str, pd.DataFrame], out: Path, formats, precision: int, standalone: bool) -> None:
    """``out/combined.{csv,md,tex}``: worst-group accuracy of every method on every dataset."""
    combined = combined_table(boards)
    if "csv" in formats:
        combined.to_csv(out / "combined.csv", index=False, float_format="%.4f")
    if "md" in formats:
        lines = [
            "Test worst-group accuracy (%), mean ± std over seeds:",
            "",
            *markdown(*combined_rows(combined, MARKDOWN, precision)),
        ]
        (out / "combined.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if "tex" in formats:
        tabular = latex(*combined_rows(combined, LATEX, precision), "l" + "c" * len(boards))
        (out / "combined.tex").write_text(
            latex_file(tabular, ["test worst-group accuracy (%)"], standalone), encoding="utf-8"
        )


def dataset_boards(
    results: list[dict], select: str = "val-wga", columns: Sequence[str] | None = None
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per dataset of ``results``: its runs of the trial each method's family selects under ``select`` (one row
    per run, without other datasets' columns) and its leaderboard. ``columns``, if given, must be metrics of the
    runs."""
    runs = runs_frame(results, select)
    if runs.empty:
        return {}
    known = [c[len("test_") :] for c in runs.columns if c.startswith("test_")]
    for column in columns or ():
        if column not in known:
            raise BenchError(
                f"bad --columns entry '{column}': not a metric of these runs; choose from {', '.join(known)}"
            )
    tables = {}
    for dataset, dataset_runs in select_trials(runs, select).groupby("dataset", sort=False):
        # other datasets' groups and extra metrics (e.g. adj_acc) are not this dataset's columns
        extra = [c for c in dataset_runs if c.startswith(("test_", "val_")) and c.split("_", 1)[1] not in ORDER]
        per_group = [c for c in dataset_runs if c.startswith(("group:", "live:", "n_test:"))]
        foreign = [c for c in [*extra, *per_group] if dataset_runs[c].isna().all()]
        dataset_runs = dataset_runs.drop(columns=foreign).reset_index(drop=True)
        tables[str(dataset)] = (dataset_runs, leaderboard(dataset_runs))
    return tables


def write_reports(
    results: list[dict],
    out: Path,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    select: str = "val-wga",
    columns: Sequence[str] | None = None,
    precision: int = 1,
    standalone: bool = False,
) -> dict[str, pd.DataFrame]:
    """Write the reports of every dataset in ``results`` under selection rule ``select`` to ``out/<dataset>/``
    (and ``out/combined.*`` over several datasets); return the leaderboards by dataset. ``columns`` picks the
    metrics of the Markdown, LaTeX and HTML leaderboards, ``precision`` their decimals, ``standalone`` makes
    each .tex file a complete document."""
    boards: dict[str, pd.DataFrame] = {}
    for dataset, (dataset_runs, board) in dataset_boards(results, select, columns).items():
        groups, cost = group_table(dataset_runs), cost_table(dataset_runs)
        metrics = shown_metrics(board, columns)
        folder = Path(out) / str(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        if "csv" in formats:
            p_value = f"{TESTED}_p_vs_{BASELINE}"  # 4 significant digits: 4 decimals would round small p to 0
            csv = board.assign(**{p_value: board[p_value].map(lambda p: f"{p:.4g}" if p == p else "")})
            csv.to_csv(folder / "leaderboard.csv", index=False, float_format="%.4f")
            groups.to_csv(folder / "groups.csv", index=False, float_format="%.4f")
            cost.to_csv(folder / "cost.csv", index=False, float_format="%.4f")
        if "tex" in formats:
            for name, text in to_latex(board, groups, cost, metrics, precision, standalone).items():
                (folder / name).write_text(text, encoding="utf-8")
        if "md" in formats:
            (folder / "leaderboard.md").write_text(
                to_markdown(board, groups, cost, metrics, precision), encoding="utf-8"
            )
        if {"png", "html"} & set(formats):
            from benchmark.plots import report_plots

            labelled = dataset_runs.merge(board[[*KEYS, "label"]], on=KEYS)
            images = report_plots(str(dataset), board, labelled, curves_frame(results, labelled))
            if "png" in formats:
                for name, png in images.items():
                    (folder / name).write_bytes(png)
            if "html" in formats:
                html = to_html(str(dataset), board, groups, cost, images, metrics, precision)
                (folder / "report.html").write_text(html, encoding="utf-8")
        boards[str(dataset)] = board
    if len(boards) > 1:
        write_combined(boards, Path(out), formats, precision, standalone)
    return boards
