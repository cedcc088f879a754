"""``table``: a CSV or Parquet file a user has (``--data-root FILE``) as a dataset of one vector feature space.

Groups are the (class × attribute) cells that occur in the file, the attribute being the combination of the
``data.attributes`` columns' values. Features are encoded with statistics of the training split only: numeric
columns standardised (a missing value takes the training median, and a ``<column>=missing`` indicator says so),
categorical columns one-hot over their training levels (a missing value is a level of its own, a level unseen in
training encodes as all zeros).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.core.errors import BenchError, one_line
from benchmark.core.registry import register_dataset
from benchmark.core.settings import FRACTION
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import GroupDataset, observed_cells, vector_dataset
from benchmark.data.sources import SPLIT_NAMES, check_table_size, one_hot, refuse_symlink_loop, stratified_parts

MISSING = "missing"  # the level of a missing categorical value, and the suffix of a numeric column's indicator
EXTRA_MISSING = ("?",)  # read as missing beside pandas' defaults (empty, NA, NaN, null, ...): UCI's marker
MAX_LEVELS = 1000  # distinct training values a categorical column may have (more: an identifier, not a category)
NUMERIC_SHARE = 0.9  # a text column whose values are numbers at least this often is numeric with bad values
TABULAR_TRAIN = {"epochs": 50, "batch_size": 256, "lr": 1e-3}  # Lu et al. 2024's budget for Adult (as adult's)
READERS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class Source:
    """The file a table came from, for messages: its path and whether rows are CSV lines (header on line 1)."""

    path: Path
    csv: bool

    def where(self, row: int) -> str:
        """The place of data row ``row`` (0-based), as a user finds it in the file."""
        return f"{self.path} line {row + 2}" if self.csv else f"{self.path} row {row + 1}"


def read_frame(path: Path) -> tuple[pd.DataFrame, Source]:
    """The file's rows (strings and numbers as pandas infers them); one BenchError for a missing, unreadable or
    empty file."""
    if not path.is_file():
        refuse_symlink_loop(path, str(path))
        raise BenchError(f"table file {path} not found (give --data-root FILE, a .csv or .parquet file)")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise BenchError(f"{path}: expected a .csv (or .csv.gz) or .parquet file, got '{path.suffix}'")
    check_table_size(path)
    try:
        if kind == "csv":
            frame = pd.read_csv(path, na_values=list(EXTRA_MISSING), low_memory=False)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise BenchError(f"{path} is empty") from None
    except ImportError as exc:
        raise BenchError(f"reading {path} needs pyarrow ({exc})") from None
    except Exception as exc:  # parsers raise many types; the first line of their message names the fault
        raise BenchError(f"{path} is not a readable {kind} file: {one_line(exc)}") from None
    if frame.empty:
        raise BenchError(f"{path} has no data rows")
    frame.columns = [str(c) for c in frame.columns]
    return frame, Source(path, kind == "csv")


def column_names(text: str) -> list[str]:
    """The comma-separated column names of an option (blank entries dropped)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def labels(values: pd.Series) -> pd.Series:
    """Values as text labels (integers without a decimal point), missing ones as :data:`MISSING`."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str)
    numbers = pd.to_numeric(values, errors="coerce")
    whole = numbers.notna() & (numbers == numbers.round())
    text = values.astype(str).where(~whole, numbers.where(whole).astype("Int64").astype(str))
    return text.where(values.notna(), MISSING)


def numeric_values(values: pd.Series, name: str, source: Source) -> np.ndarray | None:
    """A feature column as floats (NaN where missing) when it is numeric, None when it is categorical: a text
    column is numeric when at least :data:`NUMERIC_SHARE` of its values are numbers, and then a value that is not
    one is an error."""
    if pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_numeric_dtype(values) else values
    present = values.notna().to_numpy()
    parsed = numbers.notna().to_numpy()
    if present.sum() and parsed[present].mean() < NUMERIC_SHARE:
        return None
    bad = np.flatnonzero(present & ~parsed)
    out = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = bad if len(bad) else np.flatnonzero(np.isinf(out))
    if len(bad):
        raise BenchError(
            f"{source.where(bad[0])}: column '{name}' value '{values.iloc[bad[0]]}' is not a finite number"
        )
    return out


def encode_features(frame: pd.DataFrame, names: list[str], categorical: set[str], train: np.ndarray, source: Source):
    """The feature matrix (float32), the feature names and, per column with missing values, how many and how they
    were filled (module docstring); statistics from the rows ``train`` only."""
    parts, feature_names, missing = [], [], {}
    for name in names:
        values = frame[name]
        absent = values.isna().to_numpy()
        numbers = None if name in categorical else numeric_values(values, name, source)
        if numbers is None:
            text = labels(values).to_numpy()
            levels = np.unique(text[train])
            if len(levels) > MAX_LEVELS:
                raise BenchError(f"column '{name}' has {len(levels)} distinct training values, over {MAX_LEVELS} for a "
                                 "category (an identifier? leave it out of data.features)")  # fmt: skip
            parts.append(one_hot(text, levels))
            feature_names += [f"{name}={level}" for level in levels]
            how = "its own level"
        else:
            seen = numbers[train][~absent[train]]
            median, mean, std = (np.median(seen), seen.mean(), seen.std()) if len(seen) else (0.0, 0.0, 1.0)
            filled = np.where(absent, median, numbers)
            parts.append(((filled - mean) / (std if std > 0 else 1.0))[:, None].astype(np.float32))
            feature_names.append(name)
            if absent.any():
                parts.append(absent[:, None].astype(np.float32))
                feature_names.append(f"{name}={MISSING}")
            how = "the training median, with an indicator"
        if absent.any():
            missing[name] = (int(absent.sum()), how)
    return np.concatenate(parts, 1), feature_names, missing


def split_codes(frame: pd.DataFrame, column: str, source: Source) -> np.ndarray:
    """The split column as codes 0/1/2 (train, val, test; or the numbers 0, 1, 2); another value is an error."""
    text = labels(frame[column]).str.strip().str.lower()
    codes = text.map(SPLIT_NAMES)
    bad = np.flatnonzero(codes.isna().to_numpy())
    if len(bad):
        raise BenchError(
            f"{source.where(bad[0])}: split column '{column}' value '{frame[column].iloc[bad[0]]}' is not train, "
            "val or test (or 0, 1, 2)"
        )
    return codes.to_numpy(dtype=np.int64, copy=True)


def coded(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each value's index among the sorted distinct values, and those values."""
    names, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64), [str(n) for n in names]


@register_dataset("table")
class Table(DatasetBuilder):
    """A user's CSV or Parquet file (``--data-root FILE``): ``data.target`` names the label column,
    ``data.attributes`` one or more attribute columns (comma-separated), ``data.split`` an optional column of
    train/val/test (else a split stratified by group with the data seed, ``data.val_fraction`` and
    ``data.test_fraction``), ``data.features`` the feature columns (default: every other column) and
    ``data.categorical`` feature columns to one-hot although their values are numbers. Module docstring: the
    groups and the encoding."""

    description = "a user's CSV or Parquet table; groups are its (class × attribute) cells"
    options = {
        "target": "",
        "attributes": "",
        "split": "",
        "features": "",
        "categorical": "",
        "val_fraction": 0.2,
        "test_fraction": 0.2,
    }
    bounds = {"val_fraction": FRACTION, "test_fraction": FRACTION}
    train_defaults = TABULAR_TRAIN
    needs_data_root = True

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """The declared checks and room left for training (the columns are checked against the file, in
        :meth:`build`)."""
        options = super().check_options(options)
        if options["val_fraction"] + options["test_fraction"] >= 1:
            raise BenchError("data.val_fraction + data.test_fraction must leave a training share (sum under 1)")
        return options

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        if not options["target"] or not column_names(options["attributes"]):
            raise BenchError("dataset table needs --set data.target=COLUMN --set data.attributes=COLUMN[,COLUMN...]")
        frame, source = read_frame(Path(data_root))
        target, attributes = options["target"], column_names(options["attributes"])
        split_column = options["split"]
        roles = [target, *attributes, *([split_column] if split_column else [])]
        features = column_names(options["features"]) or [c for c in frame.columns if c not in roles]
        for name in dict.fromkeys([*roles, *features, *column_names(options["categorical"])]):
            if name not in frame.columns:
                raise BenchError(f"column '{name}' is not in {source.path} (columns: {', '.join(frame.columns)})")
        uses = [*roles, *features]
        twice = sorted({name for name in uses if uses.count(name) > 1})
        if twice:
            raise BenchError(f"column {', '.join(twice)} has two roles (of target, attributes, split, features)")
        if not features:
            raise BenchError(f"{source.path}: no feature columns left beside the target, attributes and split")
        unlabelled = np.flatnonzero(frame[target].isna().to_numpy())
        if len(unlabelled):
            raise BenchError(f"{source.where(unlabelled[0])}: the target column '{target}' is missing")
        y, class_names = coded(labels(frame[target]).to_numpy())
        if len(class_names) < 2:
            raise BenchError(f"target column '{target}' has one class ('{class_names[0]}'): nothing to classify")
        combos = [labels(frame[name]).radd(f"{name}=") for name in attributes]
        a, attr_names = coded(combos[0].str.cat(combos[1:], sep=",").to_numpy())
        g, group_names = observed_cells(y, a, class_names, attr_names)
        if split_column:
            split = split_codes(frame, split_column, source)
        else:
            val, test = options["val_fraction"], options["test_fraction"]
            split = stratified_parts(g, (1 - val - test, val, test), np.random.default_rng([options["seed"], 0x7AB1E]))
        categorical = set(column_names(options["categorical"]))
        x, names, missing = encode_features(frame, features, categorical, split == 0, source)
        filled = "; ".join(f"{name} {n} ({how})" for name, (n, how) in missing.items()) or "none"
        description = (
            f"{source.path.name}: {len(frame)} rows, target {target} ({len(class_names)} classes), attributes "
            f"{', '.join(attributes)}, {len(features)} feature columns encoded as {len(names)} inputs; missing "
            f"values: {filled}"
        )
        names = (class_names, attr_names, group_names)
        return vector_dataset(self.name, "table", x, y, a, g, split, names, description)
