"""The dataset layer: core types, offline sources and the registered dataset builders."""

from __future__ import annotations

import json
from functools import lru_cache

from benchmark.data import (  # noqa: F401  (registers the built-ins)
    adult,
    digits_full,
    digits_hetero,
    digits_lt,
    real_images,
    spurious,
)
from benchmark.data.batches import Batch
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.registry import DATASETS

__all__ = ["Batch", "DatasetBuilder", "FeatureSpace", "GroupDataset", "build_dataset"]


def build_dataset(name: str, options: dict, data_root: str | None = None) -> GroupDataset:
    """Build (or reuse, within this process) the CPU dataset ``name`` with fully resolved options, after checking
    them (:meth:`DatasetBuilder.check_options`)."""
    options = DATASETS.get(name).check_options(options)
    return _build_cached(name, json.dumps(options, sort_keys=True), data_root)


@lru_cache(maxsize=4)
def _build_cached(name: str, options_json: str, data_root: str | None) -> GroupDataset:
    data = DATASETS.get(name)().build(json.loads(options_json), data_root)
    data.validate()
    return data
