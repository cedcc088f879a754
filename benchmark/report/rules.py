"""Several selection rules side by side (``bench report --select val-wga,val-wca,oracle``): per dataset,
``selection.{csv,md,tex}`` with each method's test worst-group and average accuracy when its epochs and trials are
chosen by each rule, and the trial each rule chose. The gap between ``val-wga`` and ``val-wca`` (or ``val-acc``)
is what a method loses without validation group labels; ``oracle`` (test WGA) is the ceiling no honest rule
reaches."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.report.formats import LATEX, MARKDOWN, Style, latex, latex_file, markdown, mean_std
from benchmark.report.frames import dataset_boards

COLUMNS = ["label", "select", "trial", "trials", "tuned_on", "n_seeds", "wga_mean", "wga_std", "acc_mean", "acc_std"]


def rules_table(results: list[dict], rules: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per dataset, one row per (method, family) and rule: the leaderboard's identity, the chosen ``trial`` and
    the test WGA and accuracy under that rule."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for rule in rules:
        for dataset, (_, board) in dataset_boards(results, rule).items():
            frames.setdefault(dataset, []).append(board[[*KEYS, *(c for c in COLUMNS if c in board)]])
    return {dataset: pd.concat(parts, ignore_index=True) for dataset, parts in frames.items()}


def seeds_note(n_seeds: int, most: int) -> str:
    """``, 1 seed`` where a rule's chosen trial has fewer seeds than another rule's (after ``--tune-seeds``, a
    trial that only another rule would choose ran on the tuning seeds only); empty otherwise."""
    return "" if n_seeds == most else f", {n_seeds} seed{'s' if n_seeds > 1 else ''}"


def rules_rows(table: pd.DataFrame, rules: Sequence[str], style: Style, precision: int):
    """Header and rows: per method, test WGA (mean ± std) and the chosen trial under each rule."""
    header = ["Method", *(f"{style.header('wga')} ({style.escape(rule)})" for rule in rules)]
    rows = []
    for _, family in table.groupby(KEYS, sort=False):
        by_rule = family.set_index("select")
        most = family["n_seeds"].max()
        cells = [
            f"{mean_std(by_rule.loc[r, 'wga_mean'], by_rule.loc[r, 'wga_std'], style.plus_minus, precision)} "
            f"(trial {by_rule.loc[r, 'trial']}{seeds_note(by_rule.loc[r, 'n_seeds'], most)})"
            if r in by_rule.index
            else style.missing
            for r in rules
        ]
        rows.append([style.escape(family["label"].iloc[0]), *cells])
    return header, rows


def write_rules(
    results: list[dict], out: Path, rules: Sequence[str], formats, precision: int = 1, standalone: bool = False
) -> None:
    """``out/<dataset>/selection.{csv,md,tex}`` (as ``formats`` asks) for every dataset of ``results``."""
    for dataset, table in rules_table(results, rules).items():
        folder = Path(out) / dataset
        folder.mkdir(parents=True, exist_ok=True)
        if "csv" in formats:
            table.to_csv(folder / "selection.csv", index=False, float_format="%.4f")
        note = (
            "test worst-group accuracy (%), mean ± std over seeds, and the trial each selection rule chose (with "
            "its number of seeds where it has fewer than another rule's: after --tune-seeds only the first rule's "
            "winner ran on every seed)"
        )
        if "md" in formats:
            lines = [f"{note[0].upper()}{note[1:]}:", "", *markdown(*rules_rows(table, rules, MARKDOWN, precision))]
            (folder / "selection.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        if "tex" in formats:
            tabular = latex(*rules_rows(table, rules, LATEX, precision), "l" + "c" * len(rules))
            (folder / "selection.tex").write_text(latex_file(tabular, [note], standalone), encoding="utf-8")
