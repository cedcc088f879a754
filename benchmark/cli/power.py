"""``bench power``: how many seeds and how large a worst group's test split a tuned sweep needs (no training)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from benchmark.cli.common import app, cli_errors
from benchmark.core.errors import BenchError
from benchmark.sweeps.checks import names


def parse_counts(text: str, option: str, least: int) -> list[int]:
    """Comma-separated integers, each at least ``least``."""
    try:
        counts = [int(item) for item in names(text, option)]
    except ValueError:
        raise BenchError(f"bad {option} '{text}': expected integers like 3,5,10") from None
    if min(counts) < least:
        raise BenchError(f"bad {option} '{text}': each must be >= {least}")
    return counts


@app.command(short_help="Power computation: seeds and test sizes to tell methods apart.")
@cli_errors
def power(
    results: Path = typer.Option(Path("reports/tuned/runs"), help="results folder (or export file) of a tuned sweep"),
    datasets: Optional[str] = typer.Option(None, help="comma-separated (default: every dataset with finished runs)"),
    seeds: str = typer.Option("3,5,10,20", help="numbers of seeds; the size columns use the second-to-last"),
    sizes: str = typer.Option("1000", help="worst-group test sizes to compare with the current one"),
) -> None:
    """Per dataset, from its leaderboard's rows under val-wga: the pooled SD of the pairs' paired differences in test
    WGA, the share of it a worst group's binomial test noise can explain, and the minimum detectable difference
    (80% power, paired t-test at Holm's strictest level) at each number of seeds and, at the second-to-last, with
    the worst group's test size changed to each of --sizes and to infinity. Prints a Markdown table."""
    from benchmark.report.power import power_table
    from benchmark.runs.export import existing_results, read_runs

    seed_counts = parse_counts(seeds, "--seeds", 2)
    if len(seed_counts) < 2:
        raise BenchError(f"bad --seeds '{seeds}': give at least two numbers of seeds")
    test_sizes = parse_counts(sizes, "--sizes", 1)
    results = existing_results(results)
    named = names(datasets, "--datasets") if datasets is not None else []
    found = list(read_runs(results, ",".join(named) or None))
    finished = sorted({r["dataset"] for r in found if r.get("status") == "ok"})
    chosen = named or finished
    missing = [name for name in chosen if name not in finished]
    if missing or not chosen:
        raise BenchError(f"no finished runs under {results}" + (f" for dataset {','.join(missing)}" if missing else ""))
    by_dataset = {name: [r for r in found if r.get("dataset") == name] for name in chosen}
    for name, runs in by_dataset.items():
        if len({r["method"] for r in runs if r.get("status") == "ok"}) < 2:
            raise BenchError(f"{name} has finished runs of one method only: a power computation compares methods")
    print(power_table(by_dataset, seed_counts, test_sizes))
