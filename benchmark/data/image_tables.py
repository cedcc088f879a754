"""What the real image datasets (``waterbirds``, ``celeba``) share: their metadata tables read with one clear error
each, and a one-space image dataset on disk with g = 2y + a.

Images stay on disk (:class:`~benchmark.data.images.ImageFiles`) and go through the field's standard
transforms at ``image_size`` (224 by default; tests use tiny sizes). The encoder is a torchvision ResNet
(``resnet50`` by default; ``-pretrained`` loads cached ImageNet weights) or ``cnn``, the shared image CNN.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.core.errors import BenchError
from benchmark.core.settings import Range
from benchmark.data.core import SPLITS, FeatureSpace, GroupDataset
from benchmark.data.images import BACKBONES, ImageFiles
from benchmark.data.sources import check_table_size

IMAGE_OPTIONS = {"image_size": 224, "encoder": "resnet50", "workers": 2}
IMAGE_CHOICES = {"encoder": ("cnn", *BACKBONES)}
IMAGE_BOUNDS = {"image_size": Range(8, 4096), "workers": Range(0, 256)}
IMAGE_TRAIN = {"epochs": 10, "batch_size": 64, "eval_batch_size": 128}


def read_table(path: Path, columns: list[str], text: tuple[str, ...] = (), **read_options) -> pd.DataFrame:
    """The ``columns`` of a CSV/whitespace table, and only those (``text`` ones as strings, none of them empty);
    a file over :data:`~benchmark.data.sources.MAX_TABLE_BYTES`, unreadable or without a column is one clear
    error."""
    check_table_size(path)
    try:
        header = pd.read_csv(path, nrows=0, **read_options).columns
        missing = [c for c in columns if c not in header]
        if not missing:
            table = pd.read_csv(path, usecols=columns, dtype=dict.fromkeys(text, str), **read_options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BenchError(f"malformed {path.name} ({path}): {str(exc).splitlines()[0]}") from None
    if missing:
        raise BenchError(f"malformed {path.name}: missing column(s) {', '.join(missing)} in {path}")
    for column in text:
        empty = np.flatnonzero(table[column].isna().to_numpy() | (table[column].str.strip() == "").to_numpy())
        if len(empty):
            raise BenchError(f"malformed {path.name}: empty {column} in row {empty[0] + 1} ({path})")
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
    """A one-space image dataset on disk with g = 2y + a, checking that no image is listed in two splits (a
    train/test leak) and that every image file exists and has a header PIL can read (:meth:`ImageFiles.check`)."""
    check_disjoint_splits(files, split)
    size = options["image_size"]
    images = ImageFiles([root / f for f in files], transform, (3, size, size), options["workers"])
    images.check()
    encoder = None if options["encoder"] == "cnn" else options["encoder"]
    space = FeatureSpace("images", "image", images, encoder)
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
