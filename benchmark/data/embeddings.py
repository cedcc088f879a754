"""``embeddings``: precomputed features in one ``.npz`` file (``--data-root FILE.npz``), e.g. a pretrained backbone's
features of the real Waterbirds or CelebA (``bench embed`` writes such a file), as one vector feature space.

Arrays: ``features`` (n × d numbers), ``y`` and ``a`` (n non-negative integers or strings), ``split`` (n values of
train/val/test or 0/1/2); optional ``g`` (n non-negative integers: the groups, instead of the (class × attribute)
cells that occur) and ``class_names``, ``attr_names``, ``group_names`` (strings naming the integer codes).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError, one_line
from benchmark.core.registry import register_dataset
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import GroupDataset, observed_cells, vector_dataset
from benchmark.data.sources import SPLIT_NAMES, refuse_symlink_loop
from benchmark.data.table import TABULAR_TRAIN

REQUIRED = ("features", "y", "a", "split")
NAMES = {"y": "class_names", "a": "attr_names", "g": "group_names"}


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` file (nothing unpickled); one BenchError for a missing or unreadable file or a
    missing required array."""
    if not path.is_file():
        refuse_symlink_loop(path, str(path))
        raise BenchError(f"embeddings file {path} not found (give --data-root FILE.npz)")
    if path.suffix.lower() != ".npz":
        raise BenchError(f"{path}: expected a .npz file (numpy.savez), got '{path.suffix}'")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise BenchError(f"{path} is not a readable .npz file: {one_line(exc)}") from None
    missing = [name for name in REQUIRED if name not in arrays]
    if missing:
        raise BenchError(f"{path} lacks the array(s) {', '.join(missing)} (it has: {', '.join(arrays) or 'none'})")
    return arrays


def codes(arrays: dict[str, np.ndarray], key: str, n: int, path: Path) -> tuple[np.ndarray, list[str]]:
    """Array ``key`` as codes over its distinct values, and their names: for integers the entries of its names array
    (``class_names`` for ``y``, ...) where the file has one, else the numbers; strings name themselves."""
    values = arrays[key]
    if values.shape != (n,):
        raise BenchError(f"{path}: array '{key}' has shape {values.shape}, expected ({n},) like the features' rows")
    if values.dtype.kind in "US":
        distinct, coded = np.unique(values.astype(str), return_inverse=True)
        return coded.astype(np.int64), [str(v) for v in distinct]
    if values.dtype.kind not in "iu" or (len(values) and values.min() < 0):
        raise BenchError(f"{path}: array '{key}' must hold non-negative integers or strings, not {values.dtype}")
    distinct, coded = np.unique(values, return_inverse=True)
    names = arrays.get(NAMES[key])
    if names is not None and (names.ndim != 1 or len(names) <= distinct.max()):
        raise BenchError(f"{path}: '{NAMES[key]}' names {len(names)} values but '{key}' reaches {distinct.max()}")
    return coded.astype(np.int64), [str(names[v]) if names is not None else str(v) for v in distinct]


def split_codes(values: np.ndarray, n: int, path: Path) -> np.ndarray:
    """The split array as codes 0/1/2; a value other than train/val/test (or 0, 1, 2) is an error."""
    if values.shape != (n,):
        raise BenchError(f"{path}: array 'split' has shape {values.shape}, expected ({n},) like the features' rows")
    text = np.char.lower(np.char.strip(values.astype(str)))
    bad = np.flatnonzero(~np.isin(text, list(SPLIT_NAMES)))
    if len(bad):
        raise BenchError(f"{path}: split[{bad[0]}] is '{values[bad[0]]}', not train, val or test (or 0, 1, 2)")
    return np.array([SPLIT_NAMES[t] for t in text], dtype=np.int64)


@register_dataset("embeddings")
class Embeddings(DatasetBuilder):
    """Precomputed features from one ``.npz`` file (module docstring): one vector feature space (the MLP encoder),
    the split as the file gives it, groups from ``g`` or else the (class × attribute) cells that occur."""

    description = "precomputed features (.npz); groups are its (class × attribute) cells or its g"
    train_defaults = TABULAR_TRAIN
    needs_data_root = True

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        path = Path(data_root)
        arrays = load_arrays(path)
        features = arrays["features"]
        if features.ndim != 2 or features.dtype.kind not in "fiu" or not features.size:
            raise BenchError(f"{path}: 'features' must be a non-empty n × d array of numbers, not {features.shape} "
                             f"{features.dtype}")  # fmt: skip
        n = len(features)
        y, class_names = codes(arrays, "y", n, path)
        if len(class_names) < 2:
            raise BenchError(f"{path}: 'y' has one class ('{class_names[0]}'): nothing to classify")
        a, attr_names = codes(arrays, "a", n, path)
        g, group_names = codes(arrays, "g", n, path) if "g" in arrays else observed_cells(y, a, class_names, attr_names)
        split = split_codes(arrays["split"], n, path)
        description = (
            f"{path.name}: {n} rows of {features.shape[1]} features, {len(class_names)} classes, "
            f"{len(attr_names)} attributes, {len(group_names)} groups"
        )
        names = (class_names, attr_names, group_names)
        return vector_dataset(self.name, "embeddings", features.astype(np.float32), y, a, g, split, names, description)
