"""The dataset layer: the dataset and batch types (:mod:`.core`, :mod:`.batches`), the builder base
(:mod:`.builder`), offline sources, images on disk, and one module per registered dataset, named after it
(``digits-hetero`` in :mod:`.digits_hetero`, ``waterbirds-style`` in :mod:`.waterbirds_style`, ...); importing
this package registers them. :func:`build_dataset` builds (and caches) one by name.

May import: ``core`` only.
"""

from __future__ import annotations

import contextlib
import json
import pickle

import torch
from threadpoolctl import threadpool_limits

from benchmark.core.registry import DATASETS
from benchmark.data import (  # noqa: F401  (registers the built-ins)
    adult,
    celeba,
    celeba_style,
    digits_hetero,
    digits_hetero_full,
    digits_hetero_spurious,
    digits_lt,
    embeddings,
    table,
    waterbirds,
    waterbirds_style,
)
from benchmark.data.batches import Batch
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset

__all__ = ["Batch", "DatasetBuilder", "FeatureSpace", "GroupDataset", "build_dataset"]


CACHED = 4  # datasets a process keeps built, the oldest dropped first
_built: dict[tuple[str, str, str | None], GroupDataset] = {}


def build_dataset(name: str, options: dict, data_root: str | None = None) -> GroupDataset:
    """Build (or reuse, within this process) the CPU dataset ``name`` with fully resolved options, after checking
    them (:meth:`DatasetBuilder.check_options`)."""
    options_json = json.dumps(DATASETS.get(name).check_options(options), sort_keys=True)
    key = (name, options_json, data_root)
    if key not in _built:
        with one_thread():
            data = DATASETS.get(name)().build(json.loads(options_json), data_root)
        data.validate()
        if len(_built) >= CACHED:
            del _built[next(iter(_built))]
        _built[key] = data
    return _built[key]


def built_datasets() -> bytes | None:
    """The datasets this process has built, pickled for the processes it starts (a pool's workers then need not
    build them again); None when one does not pickle."""
    try:
        return pickle.dumps(_built)
    except Exception:  # a builder's dataset may hold something unpicklable; the workers then build their own
        return None


def adopt_datasets(pickled: bytes | None) -> None:
    """Reuse the datasets of :func:`built_datasets` in this process."""
    if pickled is not None:
        _built.update(pickle.loads(pickled))


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
