"""``waterbirds``: the real Waterbirds (Sagawa et al. 2020) from a user's ``--data-root``: metadata read at build,
images streamed from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.registry import register_dataset
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import GroupDataset
from benchmark.data.image_tables import (
    IMAGE_BOUNDS,
    IMAGE_CHOICES,
    IMAGE_OPTIONS,
    IMAGE_TRAIN,
    binary_column,
    image_dataset,
    read_table,
)
from benchmark.data.images import field_transform
from benchmark.data.sources import data_file


@register_dataset("waterbirds")
class Waterbirds(DatasetBuilder):
    """Waterbirds (Sagawa et al. 2020) from ``metadata.csv`` (img_id, img_filename, y, split, place) and the
    images under the root: y = 1 waterbird, place = 1 water, g = 2y + place, split 0/1/2 = train/val/test.
    Transform: Resize(256/224·s) + CenterCrop(s), ImageNet normalisation. Reports ``adj_acc``."""

    description = "Waterbirds: birds (landbird/waterbird) pasted on land or water backgrounds; g = 2y + place."
    options = IMAGE_OPTIONS
    choices = IMAGE_CHOICES
    bounds = IMAGE_BOUNDS
    train_defaults = IMAGE_TRAIN
    needs_data_root = True
    data_files = ("metadata.csv",)

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        root = Path(data_root)
        path = data_file(root, "metadata.csv")
        table = read_table(path, ["img_id", "img_filename", "y", "split", "place"], text=("img_filename",))
        y = binary_column(table, "y", path, (0, 1))
        place = binary_column(table, "place", path, (0, 1))
        split = table["split"].to_numpy()
        if not np.isin(split, (0, 1, 2)).all():
            raise BenchError(f"malformed metadata.csv: split must be 0, 1 or 2 in {path}")
        size = options["image_size"]
        transform = field_transform(round(size * 256 / 224), size)
        data = image_dataset(
            self.name,
            self.description,
            root,
            list(table["img_filename"]),
            y,
            place,
            split,
            options,
            transform,
            (["landbird", "waterbird"], ["land", "water"]),
        )
        counts = data.group_counts("train").double()
        data.summaries["adj_acc"] = (counts / counts.sum().clamp_min(1)).tolist()
        return data
