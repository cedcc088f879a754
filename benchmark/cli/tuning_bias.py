"""``bench tuning-bias``: how much tuning on some seeds flatters them, from a tuned sweep's runs (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from benchmark.cli.common import app, cli_errors
from benchmark.core.errors import BenchError


@app.command("tuning-bias", short_help="Winners' test WGA on their tuning seeds vs their other seeds.")
@cli_errors
def tuning_bias(
    results: Path = typer.Option(Path("reports/tuned/runs"), help="results folder (or export file) of a tuned sweep"),
    held_out: Optional[Path] = typer.Option(None, help="also write the reports of the winners' other seeds here"),
) -> None:
    """For each dataset and method, the leaderboard winner's mean test WGA on the seeds it was tuned on against its
    mean over the other seeds, the gap and the rank of the former among the winner's seeds (1: above all). With
    --held-out, the reports (Markdown and CSV, validity.md over the datasets) of the winners' other seeds alone."""
    from benchmark.report.files import write_reports
    from benchmark.report.tuning_bias import tuning_bias as bias_rows
    from benchmark.report.tuning_bias import tuning_bias_table
    from benchmark.runs.export import existing_results, read_runs

    if held_out is not None and held_out.exists() and not held_out.is_dir():
        raise BenchError(f"--held-out {held_out} is a file, not a folder")
    results_read = list(read_runs(existing_results(results)))
    if not any(r.get("status") == "ok" for r in results_read):
        raise BenchError(f"no finished runs under {results}")
    rows, held_out_ids = bias_rows(results_read)
    print(tuning_bias_table(rows))
    if held_out is not None:
        write_reports([r for r in results_read if r["run_id"] in held_out_ids], held_out, formats=("md", "csv"))
        print(f"reports of the other seeds alone written to {held_out}")
