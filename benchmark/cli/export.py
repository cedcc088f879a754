"""``bench export`` and ``bench import``: a sweep as one Parquet file, and back into a results folder."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from benchmark.cli.common import app, cli_errors, console
from benchmark.sweeps.checks import folder


@app.command(short_help="Every run of a results folder as one Parquet file that reports read like the folder.")
@cli_errors
def export(
    results: str = typer.Argument(..., help="results folder"),
    out: str = typer.Option(..., help="the .parquet file to write"),
) -> None:
    """Write every run under RESULTS (identity, settings, the metrics at the selected evaluation per split, group and
    class, the per-evaluation history, the environment and the run's files) as one row of a compressed Parquet
    file. `bench report --results FILE` and `bm.leaderboard(FILE)` read it exactly as the folder; `bench import`
    restores the folder."""
    from benchmark.runs.export import export_results

    warn = functools.partial(console.print, "[yellow]warning:[/yellow]")
    count = export_results(folder(results, "RESULTS"), Path(out), warn)
    console.print(f"{count} runs exported to {out}")


@app.command("import", short_help="Restore an export's runs into a results folder (a sweep there skips them).")
@cli_errors
def import_(
    export_file: str = typer.Argument(..., metavar="EXPORT", help="a .parquet file written by bench export"),
    out: str = typer.Option("results", help="results folder to restore the runs into"),
) -> None:
    """Write each run of EXPORT as its run folder under --out (result.json, log.jsonl, config.json), so that `bench
    run` with the same settings and --out retrains nothing; runs already there are kept."""
    from benchmark.core.errors import BenchError
    from benchmark.runs.export import import_export, is_export

    if not is_export(Path(export_file)):
        raise BenchError(f"bad EXPORT {export_file}: give a .parquet file written by bench export")
    restored, kept = import_export(Path(export_file), folder(out, "--out"))
    console.print(f"{restored} runs restored into {out}" + (f", {kept} already there" if kept else ""))
