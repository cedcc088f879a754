"""``bench profile``: training speed per method through the trainer, against a bare loop and ERM."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Optional

from rich.table import Table

from benchmark.cli.common import app, cli_errors, console
from benchmark.core.errors import BenchError
from benchmark.sweeps.options import OPTIONS, Option, typer_parameters

SHARED = ("dataset", "methods", "device", "threads", "deterministic", "plugins", "sets", "data_root")
EPOCHS = dataclasses.replace(
    OPTIONS["epochs"], default=8, cli=int, help="the profiled run's budget in epochs (each stage's first is warm-up)"
)
OWN = [
    Option("batch_size", None, "batch size (default: the dataset's)", Optional[int]),
    Option("csv", None, "also write the table as CSV here", Optional[Path]),
    Option("breakdown", False, "also show where the bare loop's step time goes, by kind of operator", bool,
           decls=("--breakdown",)),
    Option("rounds", 1, "profile everything this many times, round-robin; ratios within each round, medians shown",
           int),
]  # fmt: skip


def profile(batch_size: int | None, csv: Path | None, breakdown: bool, rounds: int, **options) -> None:
    """Training steps/s and samples/s of each method through the training engine (a short run each, in a fresh
    process), its stages' setup time and peak memory, and the ratios to a bare PyTorch loop (same model, batches,
    optimiser) and to ERM. With ``--rounds N`` every method is profiled N times, round-robin, each ratio taken
    within its round, and the medians are shown (the CSV adds the ratio to ERM's range over rounds)."""
    import pandas as pd

    from benchmark.profiling.profile import CSV_COLUMNS
    from benchmark.profiling.profile import profile as run_profile
    from benchmark.sweeps.options import SweepConfig
    from benchmark.sweeps.plan import plan_sweep
    from benchmark.sweeps.preflight import preflight

    for option, value in {"--batch-size": batch_size, "--rounds": rounds}.items():
        if value is not None and value < 1:
            raise BenchError(f"bad {option} {value}: must be >= 1")
    options["sets"] = [*options["sets"], *([f"train.batch_size={batch_size}"] if batch_size else [])]
    config = SweepConfig.checked(from_command_line=True, seeds=[0], **options)
    planned = plan_sweep(config)
    preflight(planned)
    rows = run_profile(planned, with_breakdown=breakdown, rounds=rounds)
    table = pd.DataFrame(rows)[CSV_COLUMNS]
    peak = f"matrix-product peak {rows[0]['peak_gflop_per_s']:.1f} GFLOP/s"
    peak += f", medians of {rounds} rounds" if rounds > 1 else ""
    title = f"{config.dataset}: batch {planned[0].spec.train.batch_size}, {config.threads} thread(s), {peak}"
    console.print(rates_table(table, title))
    if breakdown:
        console.print(breakdown_table(rows[0]["breakdown"]))
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(csv, index=False, float_format="%.4f")
        console.print(f"written to {csv}")


profile.__signature__ = inspect.Signature([*typer_parameters(*SHARED), *(o.typer_parameter() for o in [EPOCHS, *OWN])])
app.command(short_help="Steps/s per method through the engine, vs a bare loop and ERM.")(cli_errors(profile))

HEADERS = {"method": "method", "steps_per_s": "steps/s", "samples_per_s": "samples/s", "ratio_to_bare": "×bare"}
HEADERS |= {"ratio_to_erm": "×erm", "step_mflop": "MFLOP/step", "gflop_per_s": "GFLOP/s", "ratio_to_peak": "×peak"}
HEADERS |= {"peak_mem_mb": "peak MB", "stage_setup_ms": "stage setup ms"}


def rates_table(table, title: str) -> Table:
    """The profile's rows (:data:`HEADERS`' columns) as a rich table."""
    shown = Table(*HEADERS.values(), title=title)
    for _, row in table.iterrows():
        cells = [row[c] for c in HEADERS]
        shown.add_row(*("–" if v is None or v != v else f"{v:.2f}" if isinstance(v, float) else str(v) for v in cells))
    return shown


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
