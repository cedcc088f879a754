"""Leaderboards from result.json files: mean ± std over seeds, best bold and second underlined.

Each run's epoch and each method's hparam trial are (re-)selected with the requested rule
(:mod:`benchmark.selection`); one row per (dataset, method, sweep family) aggregates the seeds of the chosen
trial. Writes
``leaderboard.csv`` (raw means and stds), ``leaderboard.tex`` (booktabs) and ``leaderboard.md``, plus
``groups.csv`` with every group's test accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.metrics import HIGHER_IS_BETTER
from benchmark.selection import FAMILY_KEYS as KEYS
from benchmark.selection import select_epoch, select_trials, selection_score

LABELS = {"wga": "WGA", "acc": "Acc", "delta_acc": "ΔAcc", "bga": "BGA", "mean_group_acc": "Mean-group"}
TEX_LABELS = {**LABELS, "delta_acc": r"$\Delta$Acc"}
ORDER = ("wga", "acc", "delta_acc", "bga", "mean_group_acc")
EXTRA_LABELS = {"adj_acc": "Adj-acc", "many": "Many", "medium": "Medium", "few": "Few"}
COST = ("train_time_s", "steps_per_s", "peak_memory_mb")
FORMATS = ("csv", "tex", "md")


def runs_frame(results: list[dict], select: str = "val-wga") -> pd.DataFrame:
    """One row per successful run at the epoch ``select`` picks from its history: identity, hparams (JSON),
    selection scores, test and val metrics (``test_*``, ``val_*``), test group accuracies (``group:*``), cost."""
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
        rows.append(row)
    return pd.DataFrame(rows)


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (dataset, method, family) of the chosen trial's runs (see
    :func:`~benchmark.selection.select_trials`): columns ``<metric>_mean``, ``<metric>_std``, ``n_seeds``,
    ``select``, ``trials``, the chosen ``trial`` and its ``hparams``, and the mean cost."""
    metrics = [c for c in runs.columns if c.startswith("test_")]
    grouped = runs.groupby(KEYS, sort=False)
    board = grouped[metrics].agg(["mean", "std"])
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
    return board


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean test accuracy of every group per (dataset, method, family) over the chosen trial's runs."""
    group_cols = [c for c in runs.columns if c.startswith("group:")]
    table = runs.groupby(KEYS, sort=False)[group_cols].mean().reset_index()
    return table.rename(columns={c: c[len("group:") :] for c in group_cols})


def shown_metrics(board: pd.DataFrame) -> list[str]:
    """The headline metrics, then the dataset's extra summaries (adj_acc, many/medium/few) if any."""
    extras = [c[: -len("_mean")] for c in board.columns if c.endswith("_mean") and c[: -len("_mean")] not in ORDER]
    return [*ORDER, *extras]


def label(metric: str) -> str:
    return LABELS.get(metric) or EXTRA_LABELS.get(metric, metric)


def higher_is_better(metric: str) -> bool:
    return HIGHER_IS_BETTER.get(metric, True)


def rank_marks(board: pd.DataFrame, metric: str) -> list[str]:
    """'best' / 'second' / '' per row for one metric (ties share the mark)."""
    values = board[f"{metric}_mean"]
    ordered = sorted(set(values.dropna()), reverse=higher_is_better(metric))
    marks = {v: "best" for v in ordered[:1]} | {v: "second" for v in ordered[1:2]}
    return [marks.get(v, "") if len(ordered) > 1 else "" for v in values]


def mean_std(mean: float, std: float, plus_minus: str) -> str:
    if mean != mean:
        return "–"
    return f"{mean:.1f}" if std != std else f"{mean:.1f}{plus_minus}{std:.1f}"


def to_markdown(board: pd.DataFrame, groups: pd.DataFrame) -> str:
    """A Markdown leaderboard (best bold, second underlined with <u>) and a per-group accuracy table."""
    metrics = shown_metrics(board)
    header = (
        ["Method"]
        + [f"{label(m)} {'↑' if higher_is_better(m) else '↓'}" for m in metrics]
        + ["Seeds", "Trials", "Train s", "Steps/s"]
    )
    marks = {m: rank_marks(board, m) for m in metrics}
    style = {"best": "**{}**", "second": "<u>{}</u>", "": "{}"}
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in board.iterrows():
        cells = [style[marks[m][i]].format(mean_std(row[f"{m}_mean"], row[f"{m}_std"], " ± ")) for m in metrics]
        cost = [str(row["n_seeds"]), str(row["trials"]), f"{row['train_time_s']:.1f}", f"{row['steps_per_s']:.1f}"]
        lines.append("| " + " | ".join([row["label"], *cells, *cost]) + " |")
    group_names = [c for c in groups.columns if c not in KEYS]
    lines += ["", f"Model selection (epoch and hparam trial): {board['select'].iloc[0]}."]
    lines += ["", "Test accuracy per group (mean over seeds):", ""]
    lines += ["| Method | " + " | ".join(group_names) + " |", "|" + "---|" * (len(group_names) + 1)]
    for name, (_, row) in zip(board["label"], groups.iterrows()):
        lines.append(
            f"| {name} | " + " | ".join("–" if row[g] != row[g] else f"{row[g]:.1f}" for g in group_names) + " |"
        )
    return "\n".join(lines) + "\n"


def tex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("$", r"\$"),
    ):
        text = text.replace(char, escaped)
    return text


def to_latex(board: pd.DataFrame) -> str:
    """A booktabs tabular: mean ± std, best bold, second underlined, ↑/↓ in the header."""
    metrics = shown_metrics(board)
    marks = {m: rank_marks(board, m) for m in metrics}
    style = {"best": r"$\mathbf{{{}}}$", "second": r"$\underline{{{}}}$", "": "${}$"}
    arrow = {True: r"$\uparrow$", False: r"$\downarrow$"}
    header = ["Method"] + [f"{TEX_LABELS.get(m, label(m))} {arrow[higher_is_better(m)]}" for m in metrics] + ["Seeds"]
    lines = [
        r"% generated by bench report; needs \usepackage{booktabs}",
        f"% model selection (epoch and hparam trial): {board['select'].iloc[0]}",
        r"\begin{tabular}{l" + "c" * len(metrics) + "r}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
    ]
    for i, row in board.iterrows():
        cells = [style[marks[m][i]].format(mean_std(row[f"{m}_mean"], row[f"{m}_std"], r" \pm ")) for m in metrics]
        lines.append(" & ".join([tex_escape(row["label"]), *cells, str(row["n_seeds"])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_reports(
    results: list[dict], out: Path, formats: tuple[str, ...] = FORMATS, select: str = "val-wga"
) -> dict[str, pd.DataFrame]:
    """Write the leaderboards of every dataset in ``results`` under selection rule ``select`` to
    ``out/<dataset>/``; return them by dataset."""
    runs = runs_frame(results, select)
    boards: dict[str, pd.DataFrame] = {}
    if runs.empty:
        return boards
    runs = select_trials(runs, select)
    for dataset, dataset_runs in runs.groupby("dataset", sort=False):
        other_groups = [c for c in dataset_runs if c.startswith("group:") and dataset_runs[c].isna().all()]
        dataset_runs = dataset_runs.drop(columns=other_groups).reset_index(drop=True)
        board, groups = leaderboard(dataset_runs), group_table(dataset_runs)
        folder = Path(out) / str(dataset)
        folder.mkdir(parents=True, exist_ok=True)
        if "csv" in formats:
            board.to_csv(folder / "leaderboard.csv", index=False, float_format="%.4f")
            groups.to_csv(folder / "groups.csv", index=False, float_format="%.4f")
        if "tex" in formats:
            (folder / "leaderboard.tex").write_text(to_latex(board))
        if "md" in formats:
            (folder / "leaderboard.md").write_text(to_markdown(board, groups))
        boards[str(dataset)] = board
    return boards
