"""The ``bench`` command: list, describe, run, report.

Every input is validated before anything is trained or written; a :class:`BenchError` prints one line
(``error: ...``) and exits with code 2.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from benchmark.errors import BenchError
from benchmark.settings import MAX_SEEDS, QUICK_EPOCHS, check_choice

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None)
console = Console()


def cli_errors(command):
    """Turn BenchError into one line on stderr and exit code 2, and Ctrl-C outside a sweep into one line and
    exit code 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print("interrupted: nothing was trained or written", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def parse_list(text: str, what: str) -> list[str]:
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise BenchError(f"{what} is empty")
    return items


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix: at most :data:`MAX_SEEDS` seeds, each a valid generator seed."""
    from benchmark.settings import SEED

    seeds: list[int] = []
    for item in parse_list(text, "--seeds"):
        low, dash, high = item.partition("-")
        try:
            start, end = (int(low), int(high)) if dash and low else (int(item), int(item))
        except ValueError:
            raise BenchError(f"bad --seeds '{text}': expected integers like 0,1,2 or 0-4") from None
        if start not in SEED or end not in SEED:
            raise BenchError(f"bad --seeds '{text}': seeds must be {SEED}")
        if end < start:
            raise BenchError(f"bad --seeds '{text}': the range {item} ends before it starts")
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise BenchError(f"bad --seeds '{text}': more than {MAX_SEEDS} seeds")
        seeds += range(start, end + 1)
    return list(dict.fromkeys(seeds))


@app.command("list")
@cli_errors
def list_cmd(what: str = typer.Argument("all", help="methods, datasets or all")) -> None:
    """List the registered methods and datasets (built-ins and installed plugins)."""
    from benchmark.plugins import load_builtins
    from benchmark.registry import DATASETS, METHODS

    check_choice("argument", what, ("all", "methods", "datasets"))
    load_builtins()
    if what in ("all", "methods"):
        table = Table("method", "training group labels", "hyperparameters (defaults)", title="methods")
        for name in METHODS.names():
            cls = METHODS.get(name)
            hp = ", ".join(f"{k}={v}" for k, v in cls.defaults().items()) or "-"
            table.add_row(name, "yes" if cls.needs_group_labels else "no", hp)
        console.print(table)
    if what in ("all", "datasets"):
        table = Table("dataset", "options (defaults)", title="datasets")
        for name in DATASETS.names():
            cls = DATASETS.get(name)
            table.add_row(name, ", ".join(f"{k}={v}" for k, v in cls.option_defaults().items()))
        console.print(table)


@app.command()
@cli_errors
def describe(
    dataset: str = typer.Argument(..., help="dataset name"),
    data_root: Optional[str] = typer.Option(None, help="folder with the dataset's files"),
    set_: List[str] = typer.Option([], "--set", help="data.KEY=VALUE dataset options"),
    plugin: List[str] = typer.Option([], help="plugin file or module registering datasets"),
) -> None:
    """Print a dataset's description, feature spaces and counts per split × group."""
    from benchmark.config import split_sets
    from benchmark.data import build_dataset
    from benchmark.data.core import SPLITS
    from benchmark.plan import dataset_options
    from benchmark.plugins import load_plugins

    load_plugins(plugin)
    sets = split_sets(set_)
    for key in sets:
        if not key.startswith("data."):
            raise BenchError(f"describe takes only data.* settings, got '{key}'")
    data = build_dataset(dataset, dataset_options(dataset, sets, data_root), data_root)
    console.print(f"[bold]{dataset}[/bold]: {data.description}")
    spaces = Table("feature space", "kind", "shape", "rows", title="feature spaces")
    for s in data.spaces:
        spaces.add_row(s.name, s.kind, "×".join(map(str, s.shape)), str(len(s.x)))
    console.print(spaces)
    counts = data.counts_table()
    table = Table("group", *SPLITS, "minority", title=f"samples per split × group ({data.num_classes} classes)")
    for i, name in enumerate(data.group_names):
        table.add_row(name, *(str(counts[s][i]) for s in SPLITS), "yes" if data.minority_mask[i] else "")
    table.add_row("total", *(str(sum(counts[s])) for s in SPLITS), "")
    console.print(table)
    rule = "declared by the dataset" if data.minority is not None else "cells (y, a) with P(a | y) < P(a) in training"
    console.print(f"minority groups ({rule}): {', '.join(data.minority_names) or 'none'}")


@app.command()
@cli_errors
def run(
    methods: str = typer.Option("all", help="all, or a comma-separated list of methods"),
    dataset: str = typer.Option("digits-hetero", help="dataset name"),
    seeds: str = typer.Option("0,1,2", help="training seeds, e.g. 0,1,2 or 0-4"),
    epochs: Optional[int] = typer.Option(None, help="epoch budget (overrides the dataset's default)"),
    quick: bool = typer.Option(False, "--quick", help=f"smoke-test budget: {QUICK_EPOCHS} epochs"),
    trials: int = typer.Option(1, help="random-search hparam trials per method (trial 0: the defaults)"),
    select: str = typer.Option("val-wga", help="model selection (epoch and trial): val-wga, val-acc or oracle"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    launcher: str = typer.Option("local", help="local, ray or slurm"),
    workers: Optional[int] = typer.Option(
        None,
        help="parallel runs (local: processes, default one per core on CPU and one per GPU; ray: CPUs of a local "
        "instance; slurm: array limit)",
    ),
    threads: int = typer.Option(1, help="torch CPU threads per run (metrics are reproducible for a given count)"),
    deterministic: bool = typer.Option(
        False, "--deterministic", help="PyTorch's deterministic algorithms (bitwise-repeatable CUDA runs)"
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
    from benchmark.api import sweep
    from benchmark.progress import RichProgress
    from benchmark.report import write_reports
    from benchmark.sweep import Interrupted

    try:
        with RichProgress(console) as progress:
            outcome = sweep(
                methods=parse_list(methods, "--methods"),
                dataset=dataset,
                seeds=parse_seeds(seeds),
                epochs=epochs,
                quick=quick,
                trials=trials,
                select=select,
                device=device,
                launcher=launcher,
                workers=workers,
                threads=threads,
                deterministic=deterministic,
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
            boards = write_reports(outcome.results, out, select=select)
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
    from benchmark.progress import RichProgress

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


@app.command("report")
@cli_errors
def report_cmd(
    results: Path = typer.Option(Path("results"), help="results folder to aggregate"),
    dataset: Optional[str] = typer.Option(None, help="only this dataset"),
    out: Path = typer.Option(Path("reports"), help="where to write <dataset>/* (and combined.* over several datasets)"),
    formats: str = typer.Option("csv,tex,md,png,html", help="comma-separated: csv, tex, md, png, html"),
    select: str = typer.Option("val-wga", help="re-select epochs and trials: val-wga, val-acc or oracle"),
    columns: Optional[str] = typer.Option(
        None, help="comma-separated metrics of the Markdown/LaTeX/HTML leaderboard, e.g. wga,acc (default: all)"
    ),
    precision: int = typer.Option(1, help="decimals of the Markdown/LaTeX/HTML tables, 0 to 6"),
    standalone: bool = typer.Option(
        False, "--standalone/--no-standalone", help="LaTeX files as complete documents that compile with pdflatex"
    ),
) -> None:
    """Aggregate every result.json under a results folder into leaderboards, per-group and cost tables, plots and
    an HTML page (no training)."""
    from benchmark.report import FORMATS, write_reports
    from benchmark.selection import SELECT_RULES
    from benchmark.store import iter_results

    check_choice("--select", select, SELECT_RULES)
    chosen = tuple(parse_list(formats, "--formats"))
    for f in chosen:
        check_choice("--formats entry", f, FORMATS)
    shown = parse_list(columns, "--columns") if columns is not None else None
    if not 0 <= precision <= 6:
        raise BenchError(f"bad --precision {precision}: must be between 0 and 6")
    if not results.is_dir():
        raise BenchError(f"results folder not found: {results}")
    if out.exists() and not out.is_dir():
        raise BenchError(f"--out {out} is a file, not a folder")
    warn = functools.partial(console.print, "[yellow]warning:[/yellow]")
    found = list(iter_results(results, dataset, warn))
    boards = write_reports(found, out, chosen, select, shown, precision, standalone)
    if not boards:
        raise BenchError(f"no finished runs under {results}" + (f" for dataset {dataset}" if dataset else ""))
    for name, board in boards.items():
        print_leaderboard(name, board)
        console.print(f"written to {out / name}/")
    tables = [f for f in ("csv", "md", "tex") if f in chosen]
    if len(boards) > 1 and tables:
        console.print(f"worst-group accuracy over datasets written to {out}/combined.{{{','.join(tables)}}}")


def print_leaderboard(dataset: str, board) -> None:
    """The leaderboard as a rich table on the console."""
    from benchmark.report import shown_metrics
    from benchmark.tables import label, mean_std

    title = f"{dataset}: test metrics (%), selection {board['select'].iloc[0]}"
    table = Table("method", *map(label, shown_metrics(board)), "seeds", "trials", title=title)
    for _, row in board.iterrows():
        table.add_row(
            row["label"],
            *(mean_std(row[f"{m}_mean"], row[f"{m}_std"], " ± ") for m in shown_metrics(board)),
            str(row["n_seeds"]),
            str(row["trials"]),
        )
    console.print(table)


@app.command()
@cli_errors
def profile(
    dataset: str = typer.Option("digits-hetero", help="dataset name"),
    methods: str = typer.Option("all", help="all, or a comma-separated list of methods"),
    steps: int = typer.Option(100, help="timed training steps per stage and repeat"),
    warmup: int = typer.Option(10, help="untimed steps first"),
    repeats: int = typer.Option(3, help="timed repeats (the median is reported)"),
    batch_size: Optional[int] = typer.Option(None, help="batch size (default: the dataset's)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    threads: int = typer.Option(1, help="torch CPU threads (as in runs)"),
    plugin: List[str] = typer.Option([], help="plugin file or module (repeatable)"),
    set_: List[str] = typer.Option([], "--set", help="KEY=VALUE: train.*, data.*, <method>.* (repeatable)"),
    data_root: Optional[str] = typer.Option(None, help="folder with the dataset's files"),
    csv: Optional[Path] = typer.Option(None, help="also write the table as CSV here"),
) -> None:
    """Training steps/s and samples/s of each method through the trainer, its hooks' time and peak memory,
    and the ratios to a bare PyTorch loop (same model, batches, optimiser) and to ERM."""
    import pandas as pd

    from benchmark.config import DEVICES
    from benchmark.plan import plan_sweep
    from benchmark.profile import CSV_COLUMNS, ProfileSettings
    from benchmark.profile import profile as run_profile
    from benchmark.runner import preflight

    check_choice("--device", device, DEVICES)
    for option, value in (("--steps", steps), ("--repeats", repeats), ("--threads", threads)):
        if value < 1:
            raise BenchError(f"bad {option} {value}: must be >= 1")
    if warmup < 0 or (batch_size is not None and batch_size < 1):
        raise BenchError("--warmup must be >= 0 and --batch-size >= 1")
    sets = [*set_, *([f"train.batch_size={batch_size}"] if batch_size else [])]
    names = parse_list(methods, "--methods")
    planned = plan_sweep(
        names, dataset, [0], device=device, plugins=tuple(plugin), sets=sets, data_root=data_root, threads=threads
    )
    preflight(planned)
    rows = run_profile(planned, ProfileSettings(steps, warmup, repeats))
    table = pd.DataFrame(rows)[CSV_COLUMNS]
    headers = {"method": "method", "steps_per_s": "steps/s", "samples_per_s": "samples/s", "ratio_to_bare": "×bare"}
    headers |= {
        "ratio_to_erm": "×erm",
        "peak_mem_mb": "peak MB",
        "stage_start_ms": "stage ms",
        "epoch_start_ms": "epoch ms",
    }
    shown = Table(*headers.values(), title=f"{dataset}: batch {planned[0].spec.train.batch_size}, {threads} thread(s)")
    for _, row in table.iterrows():
        cells = [row[c] for c in headers]
        shown.add_row(*("–" if v is None or v != v else f"{v:.2f}" if isinstance(v, float) else str(v) for v in cells))
    console.print(shown)
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(csv, index=False, float_format="%.4f")
        console.print(f"written to {csv}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
