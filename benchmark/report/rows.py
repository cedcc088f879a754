"""The header and formatted rows of each report table (leaderboard, per-group accuracy, compute cost, methods ×
datasets), in any output :class:`~benchmark.report.formats.Style`, and the dagger's note."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from benchmark.report.applicability import NOT_APPLICABLE
from benchmark.report.formats import LATEX, Style, cell, higher_is_better, ranked_column
from benchmark.report.frames import BASELINE, COST, HEADLINE_NAMES, group_names, headline

COST_LABELS = {"train_time_s": "Train s", "steps_per_s": "Steps/s", "peak_memory_mb": "Peak MB", "train_cpu_s": "CPU s"}
NA = "n/a"  # the cell of a method that was not applicable (its reason in :func:`applicability_note`)


def not_applicable_rows(table: pd.DataFrame, column: str = NOT_APPLICABLE) -> pd.Series:
    """Which rows of a board (or of a table whose ``column`` holds the reasons) are of a method that was not
    applicable."""
    return table[column].notna() if column in table else pd.Series(False, table.index)


def applicable_cells(column: list[str], not_applicable: pd.Series) -> list[str]:
    """A column's cells with :data:`NA` in the rows of a method that was not applicable."""
    return [NA if hidden else text for text, hidden in zip(column, not_applicable)]


def leaderboard_rows(board: pd.DataFrame, style: Style, metrics: Sequence[str], precision: int):
    """Header and rows of the leaderboard: method, what it read in training (where the runs record it), metrics
    (best bold, second underlined, daggers; n/a where the method was not applicable), seeds, trials."""
    reads = [list(map(style.escape, board["labels"].fillna("–")))] if "labels" in board else []
    header = ["Method", *(["Labels read"] if reads else []), *map(style.header, metrics), "Seeds", "Trials"]
    tested = headline(board.columns)
    wins = {tested: board[f"{tested}_win_vs_{BASELINE}"]}
    cells = [
        applicable_cells(
            ranked_column(style, board[f"{m}_mean"], board[f"{m}_std"], higher_is_better(m), precision, wins.get(m)),
            not_applicable_rows(board),
        )
        for m in metrics
    ]
    names, seeds, trials = map(style.escape, board["label"]), board["n_seeds"].astype(str), board["trials"].astype(str)
    return header, [list(row) for row in zip(names, *reads, *cells, seeds, trials)]


def group_rows(board: pd.DataFrame, groups: pd.DataFrame, style: Style, precision: int):
    """Header and rows of the per-group test accuracy table (best per group bold, second underlined): each group's
    test size in its header and the Wilson 95% interval after each accuracy when the runs record group sizes (n/a where
    the method was not applicable), then
    the share of live latent units per group (%, on val) when they record it."""
    names, header, cells = group_names(groups), [], []
    for g in names:
        column = applicable_cells(ranked_column(style, groups[g], None, True, precision), not_applicable_rows(board))
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


def runs_at_once(value, style: Style) -> str:
    return str(int(value)) if pd.notna(value) else style.missing


def cost_rows(board: pd.DataFrame, cost: pd.DataFrame, style: Style):
    """Header and rows of the compute-cost table: total optimizer steps, steps per stage, then mean ± std over
    seeds (one decimal) of time, steps/s, memory and, where runs recorded them, CPU time and the most runs that
    shared the machine."""
    shown = [*COST, *(["train_cpu_s"] if "train_cpu_s_mean" in cost else [])]
    shared = "parallel_runs_max" in cost
    rows = [
        [
            style.escape(name),
            str(int(row["steps"])) if pd.notna(row["steps"]) else style.missing,
            style.escape(row["stage_steps"]),
            *(cell(style, row[f"{c}_mean"], row[f"{c}_std"]) for c in shown),
            *([runs_at_once(row["parallel_runs_max"], style)] if shared else []),
        ]
        for name, (_, row) in zip(board["label"], cost.iterrows())
    ]
    header = ["Method", "Steps", "Steps per stage", *(COST_LABELS[c] for c in shown)]
    return header + ["Runs at once"] * shared, rows


def combined_rows(combined: pd.DataFrame, style: Style, precision: int, metrics: dict[str, str]):
    """Header and rows of the methods × datasets table of each dataset's headline metric (``metrics``: dataset ->
    metric)."""
    datasets = [c[: -len("_mean")] for c in combined.columns if c.endswith("_mean")]
    cells = [
        applicable_cells(
            ranked_column(style, combined[f"{d}_mean"], combined[f"{d}_std"], True, precision),
            not_applicable_rows(combined, f"{d}_{NOT_APPLICABLE}"),
        )
        for d in datasets
    ]
    names = map(style.escape, combined["method"])
    header = ["Method", *(f"{style.escape(d)} {style.header(metrics[d])}" for d in datasets)]
    return header, [list(row) for row in zip(names, *cells)]


def repeatability_note(board: pd.DataFrame, style: Style) -> list[str]:
    """The line naming the rows whose runs a rerun may not repeat bitwise (CUDA without deterministic algorithms)."""
    if "unrepeatable" not in board or not board["unrepeatable"].any():
        return []
    rows = board[board["unrepeatable"] > 0]
    named = ", ".join(f"{label} ({int(n)} of {int(k)} runs)" for label, n, k in zip(rows["label"], rows["unrepeatable"],
                                                                                  rows["n_seeds"]))  # fmt: skip
    text = f"Not repeatable bitwise: {named} trained on CUDA without deterministic algorithms, so a rerun can differ."
    return [style.escape(text)]


def applicability_note(board: pd.DataFrame, style: Style) -> list[str]:
    """One line per row of a method that was not applicable: why, in place of its numbers."""
    if NOT_APPLICABLE not in board:
        return []
    rows = board[board[NOT_APPLICABLE].notna()]
    return [style.escape(f"{NA}: {label}: {reason}.") for label, reason in zip(rows["label"], rows[NOT_APPLICABLE])]


def combined_notes(boards: dict[str, pd.DataFrame], style: Style) -> list[str]:
    """The :func:`applicability_note` lines of every dataset's board, each after its dataset's name."""
    notes = {name: applicability_note(board, style) for name, board in boards.items()}
    return [f"{style.escape(name)}, {line}" for name, lines in notes.items() for line in lines]


def win_note(board: pd.DataFrame, style: Style) -> list[str]:
    """The line explaining the dagger, when some row was tested against ERM."""
    tested = headline(board.columns)
    if board[f"{tested}_p_vs_{BASELINE}"].isna().all():
        return []
    p = "$p < 0.05$" if style is LATEX else style.escape("p < 0.05")
    metric = style.escape(HEADLINE_NAMES[tested])
    return [f"{style.dagger} higher mean test {metric} than {BASELINE}, paired t-test over shared seeds {p}"]
