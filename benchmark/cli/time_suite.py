"""``bench time-suite``: the default suite timed end to end, with its cost per run and its efficiency."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List

import typer

from benchmark.cli.common import app, cli_errors
from benchmark.core.errors import BenchError


@app.command("time-suite", short_help="Time the digits-hetero suite: each run's cost, the efficiency.")
@cli_errors
def time_suite(
    bench_run_args: List[str] = typer.Argument(
        None,
        help="after --: further bench run arguments, which win (e.g. -- --device cuda --stack 24)",
        metavar="BENCH_RUN_ARGS",
        show_default=False,
    ),
    out: Path = typer.Option(..., help="results folder of the timed sweep (emptied first)"),
    csv: Path = typer.Option(..., help="where to write the timings"),
) -> None:
    """Run bench run --methods all --dataset digits-hetero --seeds 0,1,2 --workers 2 (extra --workers or
    --workers-per-device replace --workers 2) into a fresh OUT, sampling the resident memory of its process tree
    every 0.2 s; write one CSV row per run (wall and training time, steps/s, peak RSS, test metrics) and a total
    row (wall time, peak summed RSS, efficiency), and print the efficiency (training time over wall × workers) with
    where the rest of the worker time went. Exits with the sweep's code. Linux only (/proc)."""
    from benchmark.report.efficiency import efficiency_line
    from benchmark.tools.suite import time_suite as run_timed

    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder")
    if csv.is_dir():
        raise BenchError(f"--csv {csv} is a folder, not a file")
    try:
        timing = run_timed(out, csv, list(bench_run_args or []))
    except KeyboardInterrupt:  # the sweep, in the same process group, stops as on Ctrl-C
        print(f"interrupted: the timed sweep stopped (its finished runs stay in {out}); no timings", file=sys.stderr)
        raise typer.Exit(130) from None
    peak = f"peak RSS of the process tree {timing.peak_rss_mb:.0f} MB"
    print(f"suite: {timing.wall_s:.1f} s wall, {peak}, exit code {timing.exit_code}; {csv}")
    print(efficiency_line(timing.shares, timing.wall_s, timing.workers))
    if timing.exit_code:
        raise typer.Exit(timing.exit_code)
