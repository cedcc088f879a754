"""``bench report``: leaderboards, tables, plots and the HTML page from stored runs (no training)."""

from __future__ import annotations

import functools
from typing import Optional

import typer
from rich.table import Table

from benchmark.cli.common import app, cli_errors, console
from benchmark.core.errors import BenchError
from benchmark.core.settings import check_choice
from benchmark.sweeps.checks import folder, names


@app.command("report", short_help="Reports from stored runs: tables, plots, HTML (no training).")
@cli_errors
def report_cmd(
    results: str = typer.Option("results", help="results folder to aggregate, or an export file (.parquet)"),
    dataset: Optional[str] = typer.Option(None, help="only this dataset (or several, comma-separated)"),
    out: Optional[str] = typer.Option(
        None, help="where to write <dataset>/* (and combined.* over several datasets); default: <results>/reports"
    ),
    formats: str = typer.Option("csv,tex,md,png,html", help="comma-separated: csv, tex, md, png, html"),
    select: str = typer.Option(
        "val-wga",
        help="re-select epochs and trials: val-wga, val-wca, val-acc or oracle; several (val-wga,val-wca,oracle) add "
        "selection.* with every rule side by side",
    ),
    columns: Optional[str] = typer.Option(
        None, help="comma-separated metrics of the Markdown/LaTeX/HTML leaderboard, e.g. wga,acc (default: all)"
    ),
    precision: int = typer.Option(1, help="decimals of the Markdown/LaTeX/HTML tables, 0 to 6"),
    standalone: bool = typer.Option(
        False, "--standalone/--no-standalone", help="LaTeX files as complete documents, cropped PDFs with pdflatex"
    ),
) -> None:
    """Aggregate every result.json under a results folder (or every run of an export file) into leaderboards,
    per-group and cost tables, plots and an HTML page (no training)."""
    from benchmark.core.selection import SELECT_RULES
    from benchmark.report.files import FORMATS, write_reports
    from benchmark.runs.export import existing_results, is_export, read_runs

    rules = names(select, "--select")
    for rule in rules:
        check_choice("--select", rule, SELECT_RULES)
    chosen = tuple(names(formats, "--formats"))
    for f in chosen:
        check_choice("--formats entry", f, FORMATS)
    shown = names(columns, "--columns") if columns is not None else None
    if not 0 <= precision <= 6:
        raise BenchError(f"bad --precision {precision}: must be between 0 and 6")
    results = existing_results(folder(results, "--results"))
    out = (results.parent if is_export(results) else results) / "reports" if out is None else folder(out, "--out")
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder")
    warn = functools.partial(console.print, "[yellow]warning:[/yellow]")
    datasets = names(dataset, "--dataset") if dataset is not None else []
    found = list(read_runs(results, ",".join(datasets) or None, warn))
    finished = {r.get("dataset") for r in found if r.get("status") == "ok"}
    missing = [name for name in datasets if name not in finished]
    if missing or not finished:
        raise BenchError(f"no finished runs under {results}" + (f" for dataset {','.join(missing)}" if missing else ""))
    boards = write_reports(found, out, chosen, rules, shown, precision, standalone, warn)
    for name, board in boards.items():
        print_leaderboard(name, board)
        console.print(f"written to {out / name}/")
    tables = [f for f in ("csv", "md", "tex") if f in chosen]
    if len(boards) > 1 and tables:
        console.print(f"worst-group accuracy over datasets written to {out}/combined.{{{','.join(tables)}}}")
    kept = [f for f in ("csv", "md") if f in chosen]
    if len(boards) > 1 and kept:
        console.print(f"validity diagnostics over datasets written to {out}/validity.{{{','.join(kept)}}}")


def print_leaderboard(dataset: str, board) -> None:
    """The leaderboard on the console: a rich table on a terminal; elsewhere (a log file, a pipe, where rich would
    squeeze it into 80 columns) a Markdown table, one line per method."""
    from benchmark.report.files import shown_metrics
    from benchmark.report.formats import label, markdown, mean_std
    from benchmark.report.rows import NA

    title = f"{dataset}: test metrics (%), selection {board['select'].iloc[0]}"
    header = ["method", *map(label, shown_metrics(board)), "seeds", "trials"]
    rows = [
        [
            row["label"],
            *(
                NA if isinstance(row.get("not_applicable"), str) else mean_std(row[f"{m}_mean"], row[f"{m}_std"], " ± ")
                for m in shown_metrics(board)
            ),
            str(row["n_seeds"]),
            str(row["trials"]),
        ]
        for _, row in board.iterrows()
    ]
    if console.is_terminal:
        table = Table(*header, title=title)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        print("\n".join([title, *markdown(header, rows)]))
