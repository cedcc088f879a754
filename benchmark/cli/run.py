"""``bench run``: a shell over :func:`benchmark.api.sweep`, with the live view, the leaderboard and the exit policy."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from benchmark.cli.common import app, cli_errors, console, parse_list, parse_seeds
from benchmark.cli.report import print_leaderboard
from benchmark.core.settings import DEFAULT_DATASET, QUICK_EPOCHS


@app.command(short_help="Train methods × trials × seeds, then write the leaderboard.")
@cli_errors
def run(
    methods: str = typer.Option("all", help="all, or a comma-separated list of methods"),
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset name"),
    seeds: str = typer.Option("0,1,2", help="training seeds, e.g. 0,1,2 or 0-4"),
    epochs: Optional[int] = typer.Option(None, help="epoch budget (overrides the dataset's default)"),
    quick: bool = typer.Option(False, "--quick", help=f"smoke-test budget: {QUICK_EPOCHS} epochs"),
    trials: int = typer.Option(1, help="random-search hparam trials per method (trial 0: the defaults)"),
    tune_seeds: Optional[str] = typer.Option(
        None, help="two-phase tuning: the trials on these seeds only, then each method's best trial on --seeds"
    ),
    select: str = typer.Option("val-wga", help="model selection (epoch, trial): val-wga, val-wca, val-acc or oracle"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    launcher: str = typer.Option("local", help="local, ray or slurm"),
    workers: Optional[int] = typer.Option(
        None,
        help="parallel runs (local: processes, default one per core on CPU and one per GPU; ray: CPUs of a local "
        "instance; slurm: array limit)",
    ),
    workers_per_device: Optional[int] = typer.Option(
        None,
        help="local: this many runs at once on each GPU (or on the CPU), after a check that they fit in its memory",
    ),
    stack: int = typer.Option(
        1,
        help="train up to this many runs that share the dataset and budget together, as one stacked model in one "
        "process (for GPUs; 1: each run alone)",
    ),
    threads: int = typer.Option(1, help="torch CPU threads per run (metrics are reproducible for a given count)"),
    save_model: bool = typer.Option(False, "--save-model", help="keep each run's selected model (model.pt)"),
    log: List[str] = typer.Option([], help="also log every evaluation to: tensorboard (repeatable)"),
    deterministic: Optional[bool] = typer.Option(
        None,
        "--deterministic/--no-deterministic",
        help="require PyTorch's deterministic algorithms, or leave them off (default: on for CUDA runs, where an "
        "operation without one is recorded in result.json)",
        show_default=False,
    ),
    ray_address: Optional[str] = typer.Option(None, help="Ray cluster to join (default: start a local instance)"),
    slurm_partition: Optional[str] = typer.Option(None, help="SLURM partition"),
    slurm_time: int = typer.Option(60, help="SLURM time limit per run, minutes"),
    slurm_gpus: int = typer.Option(0, help="GPUs per SLURM task"),
    slurm_cpus: int = typer.Option(2, help="CPUs per SLURM task"),
    slurm_cluster: str = typer.Option("slurm", help="slurm, or local: submitit's local executor (testing)"),
    out: Path = typer.Option(Path("results"), help="results folder"),
    plugin: List[str] = typer.Option([], help="plugin file or module (repeatable)"),
    set_: List[str] = typer.Option([], "--set", help="KEY=VALUE: train.*, data.*, <method>.* (repeatable)"),
    data_root: Optional[str] = typer.Option(None, help="folder with the dataset's files"),
    force: bool = typer.Option(False, "--force", help="re-run runs that already finished"),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="re-run runs recorded as failed"),
    report: bool = typer.Option(True, "--report/--no-report", help="write the leaderboard for these runs"),
) -> None:
    """Train methods × trials × seeds on one dataset, skipping finished runs, then print and write the leaderboard."""
    from benchmark.api import sweep, write_folder_reports
    from benchmark.sweeps.progress import RichProgress
    from benchmark.sweeps.sweep import Interrupted

    try:
        with RichProgress(console) as progress:
            outcome = sweep(
                methods=parse_list(methods, "--methods"),
                dataset=dataset,
                seeds=parse_seeds(seeds),
                epochs=epochs,
                quick=quick,
                trials=trials,
                tune_seeds=None if tune_seeds is None else parse_seeds(tune_seeds, "--tune-seeds"),
                select=select,
                device=device,
                launcher=launcher,
                workers=workers,
                workers_per_device=workers_per_device,
                stack=stack,
                threads=threads,
                deterministic=deterministic,
                save_model=save_model,
                log=log,
                out=out,
                plugins=plugin,
                sets=set_,
                data_root=data_root,
                force=force,
                retry_failed=retry_failed,
                ray_address=ray_address,
                slurm_partition=slurm_partition,
                slurm_time=slurm_time,
                slurm_gpus=slurm_gpus,
                slurm_cpus=slurm_cpus,
                slurm_cluster=slurm_cluster,
                progress=progress,
            )
    except Interrupted as stop:
        print(
            f"interrupted: {stop.finished} of {stop.total} runs finished, {stop.total - stop.finished} not; "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(128 + stop.signum) from None
    if outcome.by_others:
        console.print(f"{outcome.by_others} run(s) were trained by another sweep on {out}")
    boards, reported = {}, True
    if report:
        try:
            boards = write_folder_reports(outcome, out, select)
        except OSError as exc:
            print(f"error: could not write the leaderboard to {out}: {exc.strerror or exc}", file=sys.stderr)
            reported = False
    for name, board in boards.items():
        print_leaderboard(name, board)
        console.print(f"leaderboard written to {out / name}/leaderboard.{{csv,tex,md}}")
    list_failures(outcome, out)
    if outcome.failed or not reported:
        raise typer.Exit(1)


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
