"""``bench profile``: training speed per method through the trainer, against a bare loop and ERM."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from benchmark.cli.common import app, cli_errors, console, parse_list
from benchmark.core.errors import BenchError
from benchmark.core.settings import DEFAULT_DATASET, check_choice


@app.command(short_help="Steps/s per method through the trainer, vs a bare loop and ERM.")
@cli_errors
def profile(
    dataset: str = typer.Option(DEFAULT_DATASET, help="dataset name"),
    methods: str = typer.Option("all", help="all, or a comma-separated list of methods"),
    epochs: int = typer.Option(8, help="the profiled run's budget in epochs (each stage's first epoch is warm-up)"),
    batch_size: Optional[int] = typer.Option(None, help="batch size (default: the dataset's)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    threads: int = typer.Option(1, help="torch CPU threads (as in runs)"),
    deterministic: Optional[bool] = typer.Option(
        None, "--deterministic/--no-deterministic", help="deterministic algorithms (as in runs)", show_default=False
    ),
    plugin: List[str] = typer.Option([], help="plugin file or module (repeatable)"),
    set_: List[str] = typer.Option([], "--set", help="KEY=VALUE: train.*, data.*, <method>.* (repeatable)"),
    data_root: Optional[str] = typer.Option(None, help="folder with the dataset's files"),
    csv: Optional[Path] = typer.Option(None, help="also write the table as CSV here"),
    breakdown: bool = typer.Option(
        False, "--breakdown", help="also show where the bare loop's step time goes, by kind of operator"
    ),
    rounds: int = typer.Option(
        1, help="profile everything this many times, round-robin; ratios within each round, medians shown"
    ),
) -> None:
    """Training steps/s and samples/s of each method through the trainer (a short run each, in a fresh process),
    its stages' setup time and peak memory, and the ratios to a bare PyTorch loop (same model, batches,
    optimiser) and to ERM. With ``--rounds N`` every method is profiled N times, round-robin, each ratio taken
    within its round, and the medians are shown (the CSV adds the ratio to ERM's range over rounds)."""
    import pandas as pd

    from benchmark.profiling.profile import CSV_COLUMNS
    from benchmark.profiling.profile import profile as run_profile
    from benchmark.runs.spec import DEVICES
    from benchmark.sweeps.plan import plan_sweep
    from benchmark.sweeps.preflight import preflight

    check_choice("--device", device, DEVICES)
    counts = {"--epochs": epochs, "--threads": threads, "--batch-size": batch_size, "--rounds": rounds}
    for option, value in counts.items():
        if value is not None and value < 1:
            raise BenchError(f"bad {option} {value}: must be >= 1")
    sets = [*set_, *([f"train.batch_size={batch_size}"] if batch_size else [])]
    names = parse_list(methods, "--methods")
    how = dict(device=device, plugins=tuple(plugin), data_root=data_root, threads=threads, deterministic=deterministic)
    planned = plan_sweep(names, dataset, [0], epochs, sets=sets, **how)
    preflight(planned)
    rows = run_profile(planned, with_breakdown=breakdown, rounds=rounds)
    table = pd.DataFrame(rows)[CSV_COLUMNS]
    headers = {"method": "method", "steps_per_s": "steps/s", "samples_per_s": "samples/s", "ratio_to_bare": "×bare"}
    headers |= {"ratio_to_erm": "×erm", "step_mflop": "MFLOP/step", "gflop_per_s": "GFLOP/s", "ratio_to_peak": "×peak"}
    headers |= {"peak_mem_mb": "peak MB", "stage_setup_ms": "stage setup ms"}
    peak = f"matrix-product peak {rows[0]['peak_gflop_per_s']:.1f} GFLOP/s"
    peak += f", medians of {rounds} rounds" if rounds > 1 else ""
    batch = planned[0].spec.train.batch_size
    shown = Table(*headers.values(), title=f"{dataset}: batch {batch}, {threads} thread(s), {peak}")
    for _, row in table.iterrows():
        cells = [row[c] for c in headers]
        shown.add_row(*("–" if v is None or v != v else f"{v:.2f}" if isinstance(v, float) else str(v) for v in cells))
    console.print(shown)
    if breakdown:
        console.print(breakdown_table(rows[0]["breakdown"]))
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(csv, index=False, float_format="%.4f")
        console.print(f"written to {csv}")


def breakdown_table(kinds: list[dict]) -> Table:
    """The bare loop's step time by kind of operator, as :func:`benchmark.profiling.breakdown.breakdown` measured it."""
    shown = Table("operators", "ms/step", "share", "MFLOP/step", "GFLOP/s", "×peak", title="bare loop: a step's time")
    for row in kinds:
        cells = [
            row["ms_per_step"],
            100 * row["share"],
            *(row[k] for k in ("mflop_per_step", "gflop_per_s", "ratio_to_peak")),
        ]
        shown.add_row(row["kind"], *("–" if v is None else f"{v:.2f}" for v in cells))
    return shown
