"""``bench embed``: an image dataset's features from a pretrained backbone on disk, as one ``.npz``."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from benchmark.cli.common import app, cli_errors, console


@app.command(short_help="A pretrained backbone's features of an image dataset, as an .npz for --dataset embeddings.")
@cli_errors
def embed(
    dataset: str = typer.Argument(..., help="an image dataset read from --data-root: waterbirds or celeba"),
    backbone: str = typer.Option(..., help="a torchvision model with its ImageNet weights in its cache, e.g. resnet50"),
    out: Path = typer.Option(..., help="the .npz file to write"),
    data_root: str = typer.Option(..., help="folder with the dataset's files"),
    set_: List[str] = typer.Option([], "--set", help="data.KEY=VALUE dataset options (e.g. data.image_size=224)"),
    device: str = typer.Option("auto", help="auto, cpu or cuda"),
    batch_size: int = typer.Option(64, min=1, max=4096, help="images per forward pass"),
) -> None:
    """Compute the backbone's features (its final layer removed, eval mode, no gradient) of every image of the
    dataset with the dataset's own transform, and write them with the labels, attribute, split and groups to --out,
    which `bench run --dataset embeddings --data-root OUT` trains on. Nothing is downloaded: missing weights are one
    line saying where they were looked for."""
    from rich.progress import Progress

    from benchmark.core.errors import BenchError
    from benchmark.core.settings import split_sets
    from benchmark.sweeps.plan import dataset_options
    from benchmark.tools.embed import embed as compute
    from benchmark.training.devices import resolve_device

    sets = split_sets(set_)
    for key in sets:
        if not key.startswith("data."):
            raise BenchError(f"embed takes only data.* settings, got '{key}'")
    options = dataset_options(dataset, sets, data_root)
    with Progress(console=console, transient=True) as bars:
        task = bars.add_task(f"{dataset} through {backbone}", total=None)
        arrays = compute(dataset, options, data_root, backbone, out, resolve_device(device), batch_size,
                         lambda done, total: bars.update(task, completed=done, total=total))  # fmt: skip
    n, size = arrays["features"].shape
    console.print(f"{n} samples × {size} features written to {out} (bench run --dataset embeddings --data-root {out})")
