"""``bench reference``: regenerate the tuned reference (reports/tuned/) from nothing, resumably."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer

from benchmark.cli.common import app, cli_errors
from benchmark.core.errors import BenchError
from benchmark.sweeps.checks import names
from benchmark.tools.reference import CONTROLS, REFERENCE


@app.command(short_help="Regenerate the tuned reference (reports/tuned/), resumably.")
@cli_errors
def reference(
    bench_run_args: List[str] = typer.Argument(
        None,
        help="after --: further bench run arguments, which win (e.g. -- --epochs 1 for a smoke test)",
        metavar="BENCH_RUN_ARGS",
        show_default=False,
    ),
    datasets: str = typer.Option(",".join(REFERENCE + CONTROLS), help="comma-separated, trained in this order"),
    workers: int = typer.Option(2, help="parallel runs (bench run --workers)"),
    out: Path = typer.Option(Path("reports/tuned"), help="where runs/, the reports and regeneration.csv go"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the reports (--no-report: train only)"),
) -> None:
    """For each dataset in turn, bench run --methods all --trials 10 --tune-seeds 0 --seeds 0-9 into OUT/runs, its
    wall time and runs added appended to OUT/regeneration.csv; then bench report --select val-wga,val-wca,oracle
    of the reference datasets together and of each control on its own. A rerun trains only what is missing; Ctrl-C
    records the time so far."""
    from benchmark.tools.reference import Interrupted, check_datasets, regenerate

    chosen = names(datasets, "--datasets")
    if workers < 1:
        raise BenchError(f"bad --workers {workers}: must be >= 1")
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder")
    extra = list(bench_run_args or [])
    check_datasets(chosen, extra)
    try:
        failed = regenerate(chosen, workers, out, extra, report)
    except Interrupted as stop:
        print(f"interrupted: {stop.dataset}; rerun the same command to resume", file=sys.stderr)
        raise typer.Exit(130) from None
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"tuned reference regenerated in {out}")
