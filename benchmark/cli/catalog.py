"""``bench list`` and ``bench describe``: what is registered, and what a dataset holds."""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from benchmark.cli.common import app, cli_errors, console
from benchmark.core.errors import BenchError
from benchmark.core.settings import check_choice


@app.command("list", short_help="List the registered methods and datasets.")
@cli_errors
def list_cmd(
    what: str = typer.Argument("all", help="methods, datasets or all"),
    plugin: List[str] = typer.Option([], help="plugin file or module whose methods and datasets to list too"),
) -> None:
    """List the registered methods and datasets (built-ins, installed plugins and any --plugin)."""
    from benchmark.core.registry import DATASETS, METHODS
    from benchmark.plugins import load_plugins

    check_choice("argument", what, ("all", "methods", "datasets"))
    load_plugins(plugin)
    if what in ("all", "methods"):
        table = Table("method", "labels in training", "stacks", "hyperparameters (defaults)", title="methods")
        for name in METHODS.names():
            cls = METHODS.get(name)
            hp = ", ".join(f"{k}={v}" for k, v in cls.defaults().items()) or "-"
            stacks = "yes" if cls.stackable else "no: one run per process"
            table.add_row(name, cls.label_tier(), stacks, hp)
        console.print(table)
    if what in ("all", "datasets"):
        table = Table("dataset", "options (defaults)", title="datasets")
        for name in DATASETS.names():
            cls = DATASETS.get(name)
            table.add_row(name, ", ".join(f"{k}={v}" for k, v in cls.option_defaults().items()))
        console.print(table)


@app.command(short_help="A dataset's feature spaces and counts per split × group.")
@cli_errors
def describe(
    dataset: str = typer.Argument(..., help="dataset name"),
    data_root: Optional[str] = typer.Option(None, help="folder with the dataset's files (table: the file)"),
    set_: List[str] = typer.Option([], "--set", help="data.KEY=VALUE dataset options"),
    plugin: List[str] = typer.Option([], help="plugin file or module registering datasets"),
) -> None:
    """Print a dataset's description, feature spaces and counts per split × group."""
    from benchmark.core.settings import split_sets
    from benchmark.data import build_dataset
    from benchmark.data.core import SPLITS
    from benchmark.plugins import load_plugins
    from benchmark.sweeps.plan import dataset_options

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
