"""The dataset layer: core types, offline sources and the registered dataset builders."""

from __future__ import annotations

import contextlib
import json
from functools import lru_cache

import torch
from threadpoolctl import threadpool_limits

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


@contextlib.contextmanager
def one_thread():
    """NumPy's BLAS and torch on one thread for the duration, then as before. A multi-threaded float32 matrix
    product may sum in another order (OpenBLAS on an AVX-512 CPU does: digits-proj's projection changed in the
    last bits), so without this a dataset, and every number trained on it, would depend on the machine's core
    count and on ``OMP_NUM_THREADS`` (which Ray sets to 1 in its workers)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


@lru_cache(maxsize=4)
def _build_cached(name: str, options_json: str, data_root: str | None) -> GroupDataset:
    with one_thread():
        data = DATASETS.get(name)().build(json.loads(options_json), data_root)
    data.validate()
    return data
