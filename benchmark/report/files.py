"""Reports from result.json files: leaderboards (mean ± std over seeds), per-group accuracy, compute cost,
a paired test against ERM, plots and a self-contained HTML page.

Each run's epoch and each method's hparam trial are (re-)selected with the requested rule
(:mod:`benchmark.core.selection`); one row per (dataset, method, sweep family) aggregates the seeds of the chosen
trial (:mod:`benchmark.report.frames`). Per dataset, ``out/<dataset>/`` gets, by format: ``csv``:
``leaderboard.csv`` (means, stds, bootstrap CIs, p-values against ERM), ``groups.csv`` and ``cost.csv``;
``tex``: ``leaderboard.tex``, ``groups.tex`` and ``cost.tex`` (booktabs); ``md``: ``leaderboard.md`` with all
three tables; ``png``: ``groups.png``, ``wga_vs_acc.png`` and ``curves.png``; ``html``: ``report.html``
(:mod:`benchmark.report.html`, with a Validity section). Every dataset also gets validity diagnostics
(:mod:`benchmark.report.validity`: ERM failure and discriminative power): ``validity.csv`` (``csv``) and ``validity.md``
(``md``). Each dataset leads with and tests its headline metric (:func:`~benchmark.report.frames.headline`:
worst-group accuracy, balanced accuracy on a long-tailed dataset). Results over several datasets add
``out/combined.{csv,md,tex}``: each dataset's headline metric of every method, and ``out/validity.{csv,md}``: every
dataset's validity figures and the Kendall tau between each pair of datasets' rankings (convergent validity).
Several selection rules add ``selection.{csv,md,tex}`` per dataset (:mod:`benchmark.report.rules`). The tables' rows
come from :mod:`benchmark.report.rows`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import pandas as pd

from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.report.difficulty import difficulty_note
from benchmark.report.formats import LATEX, MARKDOWN, latex, latex_file, markdown
from benchmark.report.frames import (
    BASELINE,
    HEADLINE_NAMES,
    boards_of,
    combined_table,
    cost_table,
    curves_frame,
    dataset_boards,
    dataset_frames,
    group_table,
    headline,
    runs_frame,
    shown_metrics,
)
from benchmark.report.html import to_html
from benchmark.report.rows import (
    applicability_note,
    combined_notes,
    combined_rows,
    cost_rows,
    group_rows,
    leaderboard_rows,
    repeatability_note,
    win_note,
)
from benchmark.report.rules import write_rules
from benchmark.report.tuning import write_tuning
from benchmark.report.validity import dataset_validity
from benchmark.report.validity_files import write_combined_validity, write_dataset_validity

__all__ = ["DEFAULT_FORMATS", "FORMATS", "dataset_boards", "runs_frame", "shown_metrics", "write_reports"]

FORMATS = ("csv", "tex", "md", "png", "html")
DEFAULT_FORMATS = ("csv", "tex", "md")


def to_markdown(board, groups, cost, metrics: Sequence[str], precision: int = 1) -> str:
    """The leaderboard, the per-group accuracy table and the compute-cost table in Markdown; under the leaderboard
    the selection rule, the dagger's note and, where it has Easy/Middle/Hard, the classes of each third."""
    lines = markdown(*leaderboard_rows(board, MARKDOWN, metrics, precision))
    lines += ["", f"Model selection (epoch and hparam trial): {board['select'].iloc[0]}.", *win_note(board, MARKDOWN)]
    lines += repeatability_note(board, MARKDOWN)
    lines += [line for note in applicability_note(board, MARKDOWN) for line in ("", note)]
    if "difficulty" in board.attrs:
        lines += ["", difficulty_note(board.attrs["difficulty"], MARKDOWN.escape)]
    lines += ["", "Test accuracy per group (mean over seeds; [Wilson 95% interval] on the group's n test samples):", ""]
    lines += markdown(*group_rows(board, groups, MARKDOWN, precision))
    lines += ["", "Compute cost per run (mean ± std over seeds):", ""]
    lines += markdown(*cost_rows(board, cost, MARKDOWN))
    return "\n".join(lines) + "\n"


def to_latex(board, groups, cost, metrics: Sequence[str], precision: int = 1, standalone: bool = False) -> dict:
    """``leaderboard.tex``, ``groups.tex`` and ``cost.tex``: booktabs tabulars, or complete documents; where the
    leaderboard has Easy/Middle/Hard, a comment in ``leaderboard.tex`` gives the classes of each third."""
    comments = [f"model selection (epoch and hparam trial): {board['select'].iloc[0]}"]
    split = [difficulty_note(board.attrs["difficulty"])] if "difficulty" in board.attrs else []
    header, rows = leaderboard_rows(board, LATEX, metrics, precision)
    group_header, group_cells = group_rows(board, groups, LATEX, precision)
    cost_header, cost_cells = cost_rows(board, cost, LATEX)
    tables = {
        "leaderboard.tex": latex(
            header, rows, "l" + "l" * ("labels" in board) + "c" * len(metrics) + "rr",
            [*win_note(board, LATEX), *repeatability_note(board, LATEX), *applicability_note(board, LATEX)],
        ),
        "groups.tex": latex(group_header, group_cells, "l" + "c" * (len(group_header) - 1)),
        "cost.tex": latex(cost_header, cost_cells, "lrl" + "c" * (len(cost_header) - 3)),
    }
    return {
        name: latex_file(tabular, [*comments, *(split if name == "leaderboard.tex" else [])], standalone)
        for name, tabular in tables.items()
    }


def write_combined(boards: dict[str, pd.DataFrame], out: Path, formats, precision: int, standalone: bool) -> None:
    """``out/combined.{csv,md,tex}``: each dataset's headline metric (worst-group accuracy, balanced accuracy on a
    long-tailed dataset) of every method, and under the table why a method was not applicable where it was."""
    combined = combined_table(boards)
    metrics = {name: headline(board.columns) for name, board in boards.items()}
    caption = "worst-group accuracy (%)" + "".join(
        f"; {name}: {HEADLINE_NAMES[m]}" for name, m in metrics.items() if m != "wga"
    )
    if "csv" in formats:
        combined.to_csv(out / "combined.csv", index=False, float_format="%.4f")
    if "md" in formats:
        lines = [
            f"Test {caption}, mean ± std over seeds:",
            "",
            *markdown(*combined_rows(combined, MARKDOWN, precision, metrics)),
            *(line for note in combined_notes(boards, MARKDOWN) for line in ("", note)),
        ]
        (out / "combined.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if "tex" in formats:
        rows = combined_rows(combined, LATEX, precision, metrics)
        tabular = latex(*rows, "l" + "c" * len(boards), combined_notes(boards, LATEX))
        (out / "combined.tex").write_text(latex_file(tabular, [f"test {caption}"], standalone), encoding="utf-8")


def compile_pdf(tex: Path) -> str | None:
    """``tex`` compiled with pdflatex into a PDF beside it (the .aux and .log removed); the reason when it could
    not be, None when it was."""
    try:
        proc = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
            cwd=tex.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pdflatex could not compile {tex}: {exc}"
    for leftover in (tex.with_suffix(".aux"), tex.with_suffix(".log")):
        leftover.unlink(missing_ok=True)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    return None if proc.returncode == 0 else f"pdflatex could not compile {tex}: {' '.join(errors[:1])}"


def write_dataset(dataset: str, runs: pd.DataFrame, board: pd.DataFrame, results: list[dict], out: Path,
                  formats: tuple[str, ...], columns: Sequence[str] | None, precision: int, standalone: bool) -> dict:
    """One dataset's files under ``out/<dataset>/`` (see :func:`write_reports`); returns its validity figures."""
    groups, cost = group_table(runs), cost_table(runs)
    metrics = shown_metrics(board, columns)
    folder = Path(out) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    validity, pairs = dataset_validity(dataset, runs, board)
    write_dataset_validity(folder, validity, pairs, formats, precision)
    if "csv" in formats:
        # 4 significant digits: 4 decimals would round small p to 0
        p_value = f"{headline(board.columns)}_p_vs_{BASELINE}"
        csv = board.assign(**{p_value: board[p_value].map(lambda p: f"{p:.4g}" if p == p else "")})
        csv.to_csv(folder / "leaderboard.csv", index=False, float_format="%.4f")
        groups.to_csv(folder / "groups.csv", index=False, float_format="%.4f")
        cost.to_csv(folder / "cost.csv", index=False, float_format="%.4f")
    if "tex" in formats:
        for name, text in to_latex(board, groups, cost, metrics, precision, standalone).items():
            (folder / name).write_text(text, encoding="utf-8")
    if "md" in formats:
        (folder / "leaderboard.md").write_text(to_markdown(board, groups, cost, metrics, precision), encoding="utf-8")
    if {"png", "html"} & set(formats):
        from benchmark.report.plots import report_plots

        labelled = runs.merge(board[[*KEYS, "label"]], on=KEYS)
        images = report_plots(dataset, board, labelled, curves_frame(results, labelled))
        if "png" in formats:
            for name, png in images.items():
                (folder / name).write_bytes(png)
        if "html" in formats:
            environments = [r.get("environment") for r in results if r.get("dataset") == dataset]
            html = to_html(dataset, board, groups, cost, images, metrics, precision, environments, validity)
            (folder / "report.html").write_text(html, encoding="utf-8")
    return validity


def compile_written(out: Path, datasets: list[str], rules: list[str], warn) -> None:
    """Compile every standalone .tex file the reports wrote with pdflatex; ``warn`` of those that fail."""
    written = [out / name / f for name in datasets for f in ("leaderboard.tex", "groups.tex", "cost.tex")]
    written += [out / name / "selection.tex" for name in datasets if len(rules) > 1]
    for tex in [*written, *([out / "combined.tex"] if len(datasets) > 1 else [])]:
        problem = compile_pdf(tex)
        if problem:
            warn(problem)


def write_reports(
    results: list[dict],
    out: Path,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    select: str | Sequence[str] = "val-wga",
    columns: Sequence[str] | None = None,
    precision: int = 1,
    standalone: bool = False,
    warn=lambda message: None,
) -> dict[str, pd.DataFrame]:
    """Write the reports of every dataset in ``results`` under selection rule ``select`` to ``out/<dataset>/``
    (and ``out/combined.*`` and ``out/validity.*`` over several datasets); return the leaderboards by dataset.
    Several rules (a sequence): the reports use the first, and each dataset also gets ``selection.*``, every
    rule side by side, and each dataset with a random search ``tuning.*`` (:mod:`benchmark.report.tuning`).
    ``columns`` picks the metrics of the Markdown, LaTeX and HTML leaderboards, ``precision`` their decimals,
    ``standalone`` makes each .tex file a complete document, compiled to a cropped PDF where pdflatex is installed
    (``warn`` is told when one does not compile)."""
    rules = [select] if isinstance(select, str) else list(select)
    select, out = rules[0], Path(out)
    boards: dict[str, pd.DataFrame] = {}
    validity: dict[str, dict] = {}
    frames = dataset_frames(results, select)
    for dataset, (dataset_runs, board) in boards_of(frames, select, columns).items():
        how = (formats, columns, precision, standalone)
        validity[str(dataset)] = write_dataset(str(dataset), dataset_runs, board, results, out, *how)
        boards[str(dataset)] = board
    if len(boards) > 1:
        write_combined(boards, out, formats, precision, standalone)
        write_combined_validity(out, validity, boards, formats, precision)
    if len(rules) > 1:
        write_rules(results, out, rules, formats, precision, standalone)
    write_tuning(frames, out, select, formats, precision)
    if standalone and "tex" in formats and shutil.which("pdflatex"):
        compile_written(out, list(boards), rules, warn)
    return boards
