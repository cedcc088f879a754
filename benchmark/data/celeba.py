"""``celeba``: the real CelebA (Liu et al. 2015) from a user's ``--data-root``: attribute and partition lists read
at build, images streamed from disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
from benchmark.data.sources import check_table_size, refuse_symlink_loop


def read_celeba_table(root: Path, stem: str, index: str, columns: list[str]) -> tuple[pd.DataFrame, Path]:
    """``stem.csv`` (header row) or the original ``stem.txt``; the txt attribute list has a count line and
    a header line of attribute names, the partition list has no header. Only ``index`` (no cell empty) and
    ``columns`` are read."""
    csv, txt = root / f"{stem}.csv", root / f"{stem}.txt"
    wanted = [index, *columns]
    if csv.is_file():
        return read_table(csv, wanted, text=(index,)), csv
    if not txt.is_file():
        for path in (csv, txt):
            refuse_symlink_loop(path, f"{stem}.csv or {stem}.txt in {root}")
        raise BenchError(f"missing file {stem}.csv or {stem}.txt: looked in {root}")
    if stem == "list_attr_celeba":
        check_table_size(txt)
        with open(txt) as handle:
            handle.readline()
            names = handle.readline().split()
        table = read_table(txt, wanted, text=(index,), sep=r"\s+", skiprows=2, header=None, names=[index, *names])
    else:
        table = read_table(txt, wanted, text=(index,), sep=r"\s+", header=None, names=wanted)
    return table, txt


@register_dataset("celeba")
class CelebA(DatasetBuilder):
    """CelebA from ``list_attr_celeba.csv``/``.txt`` (image_id + 40 attributes in −1/1),
    ``list_eval_partition.csv``/``.txt`` and ``img_align_celeba/``: y = ``target`` (Blond_Hair), a =
    ``attribute`` (Male), g = 2y + a. Transform: CenterCrop(178) + Resize(s), ImageNet normalisation."""

    description = "CelebA: face attributes; y = target attribute (Blond_Hair), a = spurious attribute (Male)."
    options = {"target": "Blond_Hair", "attribute": "Male", **IMAGE_OPTIONS}
    choices = IMAGE_CHOICES
    bounds = IMAGE_BOUNDS
    train_defaults = IMAGE_TRAIN
    needs_data_root = True
    data_files = ("list_attr_celeba.*", "list_eval_partition.*")

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        root = Path(data_root)
        target, attribute = options["target"], options["attribute"]
        attrs, attr_path = read_celeba_table(root, "list_attr_celeba", "image_id", [target, attribute])
        parts, part_path = read_celeba_table(root, "list_eval_partition", "image_id", ["partition"])
        merged = attrs.merge(parts, on="image_id", how="left")
        if merged["partition"].isna().any():
            first = merged.loc[merged["partition"].isna(), "image_id"].iloc[0]
            raise BenchError(f"malformed {part_path.name}: no partition for image {first}")
        split = merged["partition"].to_numpy()
        if not np.isin(split, (0, 1, 2)).all():
            raise BenchError(f"malformed {part_path.name}: partition must be 0, 1 or 2")
        y = binary_column(merged, target, attr_path, (-1, 1))
        a = binary_column(merged, attribute, attr_path, (-1, 1))
        files = [f"img_align_celeba/{name}" for name in merged["image_id"]]
        transform = field_transform(options["image_size"], 178, crop_first=True)
        names = ([f"not {target}", target], [f"not {attribute}", attribute])
        description = f"CelebA: face attributes; y = {options['target']}, a = {options['attribute']}; g = 2y + a."
        return image_dataset(self.name, description, root, files, y, a, split, options, transform, names)
