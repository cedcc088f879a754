"""The real Waterbirds and CelebA from a user's ``--data-root``: metadata read at build, images streamed.

Images stay on disk (:class:`~benchmark.data.images.ImageFiles`) and go through the field's standard
transforms at ``image_size`` (224 by default; tests use tiny sizes). The encoder is a torchvision ResNet
(``resnet50`` by default; ``-pretrained`` loads cached ImageNet weights) or ``cnn``, the shared image CNN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import SPLITS, FeatureSpace, GroupDataset
from benchmark.data.images import BACKBONES, ImageFiles, field_transform
from benchmark.data.sources import data_file
from benchmark.errors import BenchError
from benchmark.registry import register_dataset
from benchmark.settings import Range

IMAGE_OPTIONS = {"image_size": 224, "encoder": "resnet50", "workers": 2}
IMAGE_CHOICES = {"encoder": ("cnn", *BACKBONES)}
IMAGE_BOUNDS = {"image_size": Range(8, 4096), "workers": Range(0, 256)}
IMAGE_TRAIN = {"epochs": 10, "batch_size": 64, "eval_batch_size": 128}


def read_table(path: Path, columns: list[str], **read_options) -> pd.DataFrame:
    """A CSV/whitespace table that must have ``columns``; unreadable files are one clear error."""
    try:
        table = pd.read_csv(path, **read_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(f"malformed {path.name} ({path}): {str(exc).splitlines()[0]}") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise BenchError(f"malformed {path.name}: missing column(s) {', '.join(missing)} in {path}")
    return table


def binary_column(table: pd.DataFrame, column: str, path: Path, values: tuple) -> np.ndarray:
    """A column whose entries must all be in ``values`` (mapped to 0/1 in that order)."""
    raw = table[column].to_numpy()
    bad = ~np.isin(raw, values)
    if bad.any():
        raise BenchError(f"malformed {path.name}: column {column} has value {raw[bad][0]} (expected one of {values})")
    return (raw == values[1]).astype(np.int64)


def check_disjoint_splits(files: list[str], split) -> None:
    """A BenchError naming the first file listed in more than one split."""
    splits = pd.DataFrame({"file": files, "split": np.asarray(split)}).drop_duplicates()
    shared = splits[splits.duplicated("file", keep=False)]
    if not shared.empty:
        file = shared["file"].iloc[0]
        names = sorted(SPLITS[s] for s in shared.loc[shared["file"] == file, "split"])
        raise BenchError(
            f"{file} is listed in the {' and '.join(names)} splits ({shared['file'].nunique()} such files): "
            "a split leak; fix the split or partition file"
        )


def image_dataset(
    name: str,
    description: str,
    root: Path,
    files: list[str],
    y,
    a,
    split,
    options: dict,
    transform,
    names: tuple[list, list],
) -> GroupDataset:
    """A one-space image dataset on disk with g = 2y + a, checking that every image file exists and that no
    image is listed in two splits (a train/test leak)."""
    check_disjoint_splits(files, split)
    paths = [root / f for f in files]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise BenchError(f"missing image file {missing[0]} ({len(missing)} of {len(paths)} listed images missing)")
    size = options["image_size"]
    encoder = None if options["encoder"] == "cnn" else options["encoder"]
    space = FeatureSpace("images", "image", ImageFiles(paths, transform, (3, size, size), options["workers"]), encoder)
    y, a, split = (torch.tensor(np.asarray(v), dtype=torch.long) for v in (y, a, split))
    class_names, attr_names = names
    return GroupDataset(
        name=name,
        description=description,
        spaces=[space],
        space=torch.zeros_like(y),
        row=torch.arange(len(y)),
        y=y,
        a=a,
        g=2 * y + a,
        split_code=split,
        class_names=class_names,
        attr_names=attr_names,
        group_names=[f"{c},{t}" for c in class_names for t in attr_names],
    )


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
        table = read_table(path, ["img_id", "img_filename", "y", "split", "place"])
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


def read_celeba_table(root: Path, stem: str, index: str, columns: list[str]) -> tuple[pd.DataFrame, Path]:
    """``stem.csv`` (header row) or the original ``stem.txt``; the txt attribute list has a count line and
    a header line of attribute names, the partition list has no header."""
    csv, txt = root / f"{stem}.csv", root / f"{stem}.txt"
    if csv.is_file():
        return read_table(csv, [index, *columns]), csv
    if not txt.is_file():
        raise BenchError(f"missing file {stem}.csv or {stem}.txt: looked in {root}")
    if stem == "list_attr_celeba":
        with open(txt) as handle:
            handle.readline()
            names = handle.readline().split()
        table = read_table(txt, [index, *columns], sep=r"\s+", skiprows=2, header=None, names=[index, *names])
    else:
        table = read_table(txt, [index, *columns], sep=r"\s+", header=None, names=[index, *columns])
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
