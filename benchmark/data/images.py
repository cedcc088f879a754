"""Image feature spaces that stay on disk: decoded and transformed per batch by DataLoader workers.

A feature space whose rows are an :class:`ImageFiles` is not held in memory; batches of such a space
carry the host rows to load (``batch.rows``, set by :func:`benchmark.data.batches.make_batches`). The model
loads them when it needs them (:meth:`benchmark.models.GroupModel.inputs`); loops that go through many batches
wrap them in :func:`prefetched`, which loads the next batches' images in worker processes into
``batch.inputs`` while the current one trains. In-memory datasets skip all of this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from benchmark.core.errors import BenchError, one_line, require
from benchmark.data.sources import refuse_symlink_loop

BACKBONES = ("resnet18", "resnet50", "resnet18-pretrained", "resnet50-pretrained")  # torchvision encoders by name
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFiles:
    """Image files decoded on demand with ``transform`` (PIL image -> C×H×W tensor of ``item_shape``)."""

    def __init__(self, paths: list[Path], transform: Callable, item_shape: tuple[int, int, int], workers: int = 2):
        self.paths = [Path(p) for p in paths]
        self.transform = transform
        self.item_shape = tuple(item_shape)
        self.workers = workers

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.paths), *self.item_shape)

    def __len__(self) -> int:
        return len(self.paths)

    def to(self, device) -> "ImageFiles":
        """Files stay on disk whatever the training device; loaded batches are moved instead."""
        return self

    def load(self, rows: np.ndarray) -> torch.Tensor:
        """The transformed images of ``rows``, stacked (len(rows) × item_shape)."""
        images = [self.transform(decoded(self.paths[row])) for row in rows]
        return torch.stack(images) if images else torch.zeros(0, *self.item_shape)

    def check(self) -> None:
        """A BenchError naming the first file that is missing (or behind a symlink loop), else the first whose
        header PIL cannot read, and how many are; only headers are read (a file whose pixels are corrupt past a
        sound header fails when a batch loads it, naming the file)."""
        missing = [p for p in self.paths if not p.is_file()]
        if missing:
            refuse_symlink_loop(missing[0], f"image file {missing[0]}")
            raise BenchError(
                f"missing image file {missing[0]} ({len(missing)} of {len(self.paths)} listed images missing)"
            )
        unreadable = [(p, why) for p in self.paths if (why := header_problem(p))]
        if unreadable:
            path, why = unreadable[0]
            raise BenchError(
                f"unreadable image file {path}: {why} ({len(unreadable)} of {len(self.paths)} listed images unreadable)"
            )


def header_problem(path: Path) -> str | None:
    """Why PIL cannot open ``path`` (``Image.open`` reads the header, no pixels), or None when it can."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path):
            return None
    except UnidentifiedImageError:
        return "not an image format PIL can read"
    except Exception as exc:  # PIL raises several types for a header it cannot parse
        return one_line(exc)


def decoded(path: Path):
    """The image in ``path`` decoded to an RGB PIL image; a file PIL cannot decode is a BenchError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except Exception as exc:  # PIL raises several types for a file it cannot decode
        raise BenchError(f"image {path} could not be decoded: {one_line(exc)}") from exc


def field_transform(resize: int, crop: int, crop_first: bool = False) -> Callable:
    """The field's standard evaluation transform: Resize + CenterCrop (CelebA crops first), ImageNet
    normalisation. Waterbirds: ``field_transform(256, 224)``; CelebA: ``field_transform(224, 178, True)``."""
    require("torchvision", "the real image datasets (waterbirds, celeba)", "images")
    from torchvision import transforms

    steps = (
        [transforms.CenterCrop(crop), transforms.Resize(resize)]
        if crop_first
        else [
            transforms.Resize(resize),
            transforms.CenterCrop(crop),
        ]
    )
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class _BatchRows(torch.utils.data.Dataset):
    """Item i: the loaded inputs of batch i's disk spaces (and of any batch attached to it)."""

    def __init__(self, sources: dict[int, ImageFiles], requests: list[list[dict[int, np.ndarray]]]):
        self.sources, self.requests = sources, requests

    def __len__(self) -> int:
        return len(self.requests)

    def __getitem__(self, i: int) -> list[dict[int, torch.Tensor]]:
        return [{s: self.sources[s].load(rows) for s, rows in request.items()} for request in self.requests[i]]


class _Rows(torch.utils.data.Dataset):
    """Item i: the loaded images of the i-th block of rows."""

    def __init__(self, files: ImageFiles, blocks: list[np.ndarray]):
        self.files, self.blocks = files, blocks

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.files.load(self.blocks[i])


def image_blocks(files: ImageFiles, batch_size: int) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Every image of ``files`` in order, as (rows, loaded images) blocks of ``batch_size``, decoded by the files'
    DataLoader workers ahead of use."""
    blocks = np.array_split(np.arange(len(files)), max(1, -(-len(files) // batch_size)))
    loader = torch.utils.data.DataLoader(
        _Rows(files, blocks), batch_size=None, num_workers=files.workers, collate_fn=_as_is
    )
    yield from zip(blocks, loader)


def prefetched(data, batches: list) -> Iterable:
    """Batches with the images of their disk-backed spaces (and of their attached batches) loaded onto the data
    device by DataLoader workers ahead of use, in order. Returns ``batches`` unchanged when every feature space
    is in memory."""
    sources = {s: space.x for s, space in enumerate(data.spaces) if isinstance(space.x, ImageFiles)}
    if not sources:
        return batches
    return _load(data, batches, sources)


def _as_is(item):
    return item


def _load(data, batches: list, sources: dict[int, ImageFiles]) -> Iterator:
    requests = [[part.rows for part in batch.parts()] for batch in batches]
    workers = max(source.workers for source in sources.values())
    loader = torch.utils.data.DataLoader(
        _BatchRows(sources, requests),
        batch_size=None,
        num_workers=workers,
        pin_memory=data.device.type == "cuda",
        collate_fn=_as_is,
    )
    for batch, loaded in zip(batches, loader):
        for part, inputs in zip(batch.parts(), loaded):
            part.inputs = {s: x.to(data.device, non_blocking=True) for s, x in inputs.items()}
        yield batch
