"""``bench run``: a shell over :func:`benchmark.api.sweep`, with the live view, the leaderboard and the exit policy."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import typer

from benchmark.cli.common import app, cli_errors, console
from benchmark.cli.report import print_leaderboard
from benchmark.sweeps.options import REPORT, typer_parameters


def run(**given) -> None:
    """Train methods × trials × seeds on one dataset, skipping finished runs, then print and write the leaderboard."""
    from benchmark.api import sweep_config, write_folder_reports
    from benchmark.sweeps.options import SweepConfig
    from benchmark.sweeps.progress import RichProgress
    from benchmark.sweeps.sweep import Interrupted

    report = given.pop("report")
    config = SweepConfig.checked(from_command_line=True, **given)
    try:
        with RichProgress(console) as progress:
            outcome = sweep_config(config, progress)
    except Interrupted as stop:
        print(
            f"interrupted: {stop.finished} of {stop.total} runs finished, {stop.total - stop.finished} not; "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(128 + stop.signum) from None
    if outcome.by_others:
        console.print(f"{outcome.by_others} run(s) were trained by another sweep on {config.out}")
    boards, reported = {}, True
    if report:
        try:
            boards = write_folder_reports(outcome, config.out, config.select)
        except OSError as exc:
            print(f"error: could not write the leaderboard to {config.out}: {exc.strerror or exc}", file=sys.stderr)
            reported = False
    for name, board in boards.items():
        print_leaderboard(name, board)
        console.print(f"leaderboard written to {config.out / name}/leaderboard.{{csv,tex,md}}")
    list_failures(outcome, config.out)
    if outcome.failed or not reported:
        raise typer.Exit(1)


run.__signature__ = inspect.Signature([*typer_parameters(), REPORT.typer_parameter()])
app.command(short_help="Train methods × trials × seeds, then write the leaderboard.")(cli_errors(run))


def list_failures(outcome, out: Path, shown: int = 10) -> None:
    """One line per failed run (at most ``shown``, then a count), and one line for all runs that could not be
    written (a full disk)."""
    from benchmark.sweeps.progress import RichProgress

    unstored = [(s, r) for s, r in outcome.failed if r.get("unstored")]
    others = [(s, r) for s, r in outcome.failed if not r.get("unstored")]
    for run, result in others[:shown]:
        console.print(f"[red]failed[/red] {RichProgress.run_name(run)} ({run.run_id}): {result.get('error')}")
    if len(others) > shown:
        console.print(f"... and {len(others) - shown} more failed runs (their result.json files say why)")
    if any(run.run_id not in outcome.attempted for run, _ in others):
        console.print("runs that failed before were not retried: add --retry-failed to re-run them")
    if unstored:
        print(
            f"error: {len(unstored)} run(s) could not be written to {out} ({unstored[0][1]['error']}); every "
            "finished run is kept: free space and re-run the same command",
            file=sys.stderr,
        )
