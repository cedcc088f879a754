"""What tuning bought each method: after a random search (``--trials``), ``tuning.{csv,md}`` per dataset sets
its defaults (trial 0) against the chosen trial, both on the seeds the trials were compared on (the tuning seeds of
``--tune-seeds``), in validation selection score and test worst-group and average accuracy."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.core.selection import tuned_seeds
from benchmark.report.formats import MARKDOWN, markdown
from benchmark.report.frames import boards_of

TUNING = ["label", "trials", "tuned_on", "trial", "hparams"]
COMPARED = {"score": "sel_score", "wga": "test_wga", "acc": "test_acc"}


def tuning_table(frames: dict[str, pd.DataFrame], select: str) -> dict[str, pd.DataFrame]:
    """Per dataset of ``frames`` (:func:`~benchmark.report.frames.dataset_frames` under ``select``), one row per family
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
    (:func:`~benchmark.report.frames.dataset_frames` under ``select``) with a searched family."""
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
