"""``adult``: UCI Adult income prediction with sex as the attribute (Lu et al.'s tabular set), from ``--data-root``.

Reads ``adult.data`` (training file) and ``adult.test`` (test file) in the UCI format: 15 comma-separated
fields per line, ``?`` for a missing value, lines starting with ``|`` are comments (``adult.test``'s first
line), blank lines are skipped and a label may end with ``.`` (as every label in ``adult.test`` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.core.errors import BenchError
from benchmark.core.registry import register_dataset
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import GroupDataset, vector_dataset
from benchmark.data.sources import check_table_size, data_file, one_hot, stratified_parts

COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")
CATEGORICAL = ("workclass", "education", "marital-status", "occupation", "relationship", "race", "native-country")
LABELS = ("<=50K", ">50K")
SEXES = ("Female", "Male")
MISSING = "?"
VAL_FRACTION = 0.2


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The data rows of a UCI Adult file as an n×15 string array (fields stripped), with their line numbers; a file
    over :data:`~benchmark.data.sources.MAX_TABLE_BYTES` is refused unread."""
    check_table_size(path)
    rows, numbers = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("|"):
                continue
            fields = [field.strip() for field in text.split(",")]
            if len(fields) != len(COLUMNS):
                raise BenchError(
                    f"{path} line {number}: {len(fields)} comma-separated fields, expected {len(COLUMNS)} "
                    f"({', '.join(COLUMNS)})"
                )
            rows.append(fields)
            numbers.append(number)
    if not rows:
        raise BenchError(f"{path}: no data rows")
    return np.array(rows, dtype=str), np.array(numbers)


def coded(table: np.ndarray, lines: np.ndarray, path: Path, column: str, known: tuple[str, ...]) -> np.ndarray:
    """Index of each row's ``column`` value in ``known`` (a trailing '.' ignored); an unknown value is an error."""
    values = np.char.rstrip(table[:, COLUMNS.index(column)], ".")
    code = np.full(len(values), -1, dtype=np.int64)
    for i, value in enumerate(known):
        code[values == value] = i
    bad = np.flatnonzero(code < 0)
    if len(bad):
        raise BenchError(f"{path} line {lines[bad[0]]}: {column} '{values[bad[0]]}' is not one of {', '.join(known)}")
    return code


def numeric(table: np.ndarray, lines: np.ndarray, path: Path) -> np.ndarray:
    """The numeric columns as an n×6 float array, NaN where missing ('?'); a non-number is an error."""
    out = np.empty((len(table), len(NUMERIC)))
    for j, column in enumerate(NUMERIC):
        values = table[:, COLUMNS.index(column)]
        missing = values == MISSING
        try:
            out[:, j] = np.where(missing, "nan", values).astype(np.float64)
        except ValueError:  # find the culprit value by value
            out[:, j] = [np.nan if m else _float_or_nan(v) for v, m in zip(values, missing)]
        bad = np.flatnonzero(~missing & ~np.isfinite(out[:, j]))
        if len(bad):
            raise BenchError(f"{path} line {lines[bad[0]]}: {column} '{values[bad[0]]}' is not a finite number")
    return out


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return np.nan


def encode(
    train: np.ndarray, test: np.ndarray, num_train: np.ndarray, num_test: np.ndarray, fit_rows: np.ndarray, columns
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features of the training and test tables: standardised numerics, then one-hot categoricals.

    ``num_*`` are the parsed numeric columns of both tables; means and standard deviations come from the
    ``fit_rows`` of the training table, categories (of ``columns``) from the whole training file. Returns
    the two feature matrices (float32) and the feature names.
    """
    mean = np.nan_to_num(np.nanmean(num_train[fit_rows], axis=0), nan=0.0)
    std = np.nanstd(num_train[fit_rows], axis=0)
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    parts_train, parts_test, names = [], [], list(NUMERIC)
    for nums, parts in ((num_train, parts_train), (num_test, parts_test)):
        parts.append(np.nan_to_num((nums - mean) / std, nan=0.0).astype(np.float32))  # missing: the mean
    for column in columns:
        j = COLUMNS.index(column)
        categories = np.unique(train[:, j])
        parts_train.append(one_hot(train[:, j], categories))
        parts_test.append(one_hot(test[:, j], categories))
        names += [f"{column}={'missing' if c == MISSING else c}" for c in categories]
    return np.concatenate(parts_train, 1), np.concatenate(parts_test, 1), names


@register_dataset("adult")
class Adult(DatasetBuilder):
    """UCI Adult: y = income > 50K, a = sex (female 0, male 1), g = 2y + a.

    Options: ``sex_feature`` (False) also gives the model sex as a one-hot input; by default the attribute
    is not among the features. Splits: ``adult.data`` is cut 80/20 into train/val, stratified by group
    with the data seed; ``adult.test`` is the test split. Missing categorical values ('?') are a category
    of their own (``workclass=missing``); a missing number is replaced by the training mean. A test
    category never seen in ``adult.data`` encodes as all zeros.
    """

    description = (
        "UCI Adult census income (as in Lu et al. 2024): predict income > 50K from 14 attributes, groups are "
        "income × sex. adult.data gives train and val (80/20, stratified by group with the data seed), "
        "adult.test the test split. Six numeric columns standardised with the training mean and std, seven "
        "categorical columns one-hot with the categories of adult.data ('?' is its own 'missing' category, an "
        "unseen test category is all zeros); sex is the attribute and not an input unless data.sex_feature."
    )
    options = {"sex_feature": False}
    # Lu et al. 2024's Adult budget: Adam, lr 1e-3, batch 256, 50 epochs
    train_defaults = {"epochs": 50, "batch_size": 256, "lr": 1e-3}
    needs_data_root = True
    data_files = ("adult.data", "adult.test")

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        if data_root is None:
            raise BenchError(f"dataset {self.name} reads files: give --data-root PATH")
        tables = []
        for name in ("adult.data", "adult.test"):
            path = data_file(data_root, name)
            table, lines = read_table(path)
            y, a = coded(table, lines, path, "income", LABELS), coded(table, lines, path, "sex", SEXES)
            tables.append((table, y, a, numeric(table, lines, path)))
        (train, y_train, a_train, num_train), (test, y_test, a_test, num_test) = tables

        rng = np.random.default_rng([options["seed"], 0xAD01])
        g_train = 2 * y_train + a_train
        split_train = stratified_parts(g_train, (1.0 - VAL_FRACTION, VAL_FRACTION), rng)
        columns = CATEGORICAL + (("sex",) if options["sex_feature"] else ())
        x_train, x_test, _ = encode(train, test, num_train, num_test, split_train == 0, columns)

        x = np.concatenate([x_train, x_test])
        y = np.concatenate([y_train, y_test])
        a = np.concatenate([a_train, a_test])
        split = np.concatenate([split_train, np.full(len(y_test), 2)])
        attrs = [s.lower() for s in SEXES]
        names = (list(LABELS), attrs, [f"{label},{attr}" for label in LABELS for attr in attrs])
        return vector_dataset(self.name, "tabular", x, y, a, 2 * y + a, split, names, self.description)
