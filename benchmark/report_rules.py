"""Several selection rules side by side (``bench report --select val-wga,val-wca,oracle``): per dataset,
``selection.{csv,md,tex}`` with each method's test worst-group and average accuracy when its epochs and trials are
chosen by each rule, and the trial each rule chose. The gap between ``val-wga`` and ``val-wca`` (or ``val-acc``)
is what a method loses without validation group labels; ``oracle`` (test WGA) is the ceiling no honest rule
reaches.

After a random search (``--trials``), ``tuning.{csv,md}`` per dataset shows what tuning bought each method: its
defaults (trial 0) against the chosen trial, both on the seeds the trials were compared on (the tuning seeds of
``--tune-seeds``), in validation selection score and test worst-group and average accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark.aggregate import boards_of, dataset_boards
from benchmark.selection import FAMILY_KEYS as KEYS
from benchmark.selection import tuned_seeds
from benchmark.tables import LATEX, MARKDOWN, Style, latex, latex_file, markdown, mean_std

COLUMNS = ["label", "select", "trial", "trials", "tuned_on", "n_seeds", "wga_mean", "wga_std", "acc_mean", "acc_std"]


def rules_table(results: list[dict], rules: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Per dataset, one row per (method, family) and rule: the leaderboard's identity, the chosen ``trial`` and
    the test WGA and accuracy under that rule."""
    frames: dict[str, list[pd.DataFrame]] = {}
    for rule in rules:
        for dataset, (_, board) in dataset_boards(results, rule).items():
            frames.setdefault(dataset, []).append(board[[*KEYS, *(c for c in COLUMNS if c in board)]])
    return {dataset: pd.concat(parts, ignore_index=True) for dataset, parts in frames.items()}


TUNING = ["label", "trials", "tuned_on", "trial", "hparams"]
COMPARED = {"score": "sel_score", "wga": "test_wga", "acc": "test_acc"}


def tuning_table(frames: dict[str, pd.DataFrame], select: str) -> dict[str, pd.DataFrame]:
    """Per dataset of ``frames`` (:func:`~benchmark.aggregate.dataset_frames` under ``select``), one row per family
    searched over several trials that include trial 0: the leaderboard's identity, chosen ``trial`` and
    ``hparams``, and ``defaults_*`` / ``tuned_*`` means over the ``tuned_on`` seeds of the selection score
    (``score``), test ``wga`` and ``acc`` of trial 0 and of the chosen trial."""
    tables = {}
    for dataset, (_, board) in boards_of(frames, select).items():
        runs, rows = frames[dataset], []
        for _, family in board[board["trials"] > 1].iterrows():
            seeds = tuned_seeds(family["tuned_on"])
            mine = runs[(runs[KEYS] == family[KEYS]).all(axis=1) & runs["seed"].isin(seeds)]
            defaults, tuned = mine[mine["trial"] == 0], mine[mine["trial"] == family["trial"]]
            if defaults.empty:
                continue
            row = {**family[[*KEYS, *TUNING]].to_dict()}
            for name, column in COMPARED.items():
                row[f"defaults_{name}"], row[f"tuned_{name}"] = defaults[column].mean(), tuned[column].mean()
            rows.append(row)
        if rows:
            tables[dataset] = pd.DataFrame(rows)
    return tables


def tuning_rows(table: pd.DataFrame, select: str, precision: int) -> tuple[list[str], list[list[str]]]:
    """Markdown header and rows of :func:`tuning_table`'s table for one dataset."""
    header = ["Method", "Trials", "Tuned on", "Chosen trial", f"{select}: defaults → tuned"]
    header += ["Test WGA: defaults → tuned", "Test acc: defaults → tuned"]
    rows = []
    for _, row in table.iterrows():
        pairs = [f"{row[f'defaults_{n}']:.{precision}f} → {row[f'tuned_{n}']:.{precision}f}" for n in COMPARED]
        identity = [MARKDOWN.escape(row["label"]), *(str(row[c]) for c in ("trials", "tuned_on", "trial"))]
        rows.append([*identity, *pairs])
    return header, rows


def write_tuning(frames: dict[str, pd.DataFrame], out: Path, select: str, formats, precision: int = 1) -> None:
    """``out/<dataset>/tuning.{csv,md}`` (as ``formats`` asks) for every dataset of ``frames``
    (:func:`~benchmark.aggregate.dataset_frames` under ``select``) with a searched family."""
    for dataset, table in tuning_table(frames, select).items():
        folder = Path(out) / dataset
        folder.mkdir(parents=True, exist_ok=True)
        if "csv" in formats:
            table.to_csv(folder / "tuning.csv", index=False, float_format="%.4f")
        if "md" in formats:
            note = (
                f"What tuning bought each method: its defaults (trial 0) against the trial {select} chose, both "
                "on the seeds the trials were compared on (mean over them; accuracies in %):"
            )
            lines = [note, "", *markdown(*tuning_rows(table, select, precision))]
            (folder / "tuning.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


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
