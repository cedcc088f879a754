"""``adult``: parsing the UCI files, features, groups and splits, errors naming file and line, and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark.data.adult as adult
from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS

N_TRAIN, N_TEST = 40, 10  # rows per (income, sex) group in adult.data / adult.test
CLI = "import benchmark.data.adult; from benchmark.cli import app; app()"


def adult_row(i: int, y: int, sex: int, test: bool = False) -> str:
    """One line in the UCI format; '?' in some workclass/occupation fields, an unseen country in the test file."""
    country = "Atlantis" if test and i == 0 else ["United-States", "Mexico", "?"][i % 3]
    fields = [
        str(20 + (i * 7 + 13 * y) % 50),
        ["Private", "State-gov", "?"][i % 3],
        str(100000 + 1000 * i),
        ["Bachelors", "HS-grad", "Masters"][(i + y) % 3],
        str(9 + (i + 3 * y) % 7),
        ["Never-married", "Married-civ-spouse"][(i + y) % 2],
        ["Sales", "?", "Tech-support"][i % 3],
        ["Husband", "Wife", "Own-child"][(i + sex) % 3],
        ["White", "Black"][i % 2],
        adult.SEXES[sex],
        str(0 if i % 4 else 5000 * y),
        "0",
        str(30 + i % 20),
        country,
        adult.LABELS[y] + ("." if test else ""),
    ]
    return ", ".join(fields)


def write_adult(root: Path, n_train: int = N_TRAIN, n_test: int = N_TEST) -> Path:
    """adult.data and adult.test as the UCI site ships them (junk first line, '.' labels, trailing blank line)."""
    root.mkdir(parents=True, exist_ok=True)
    cells = [(y, s) for y in (0, 1) for s in (0, 1)]
    train = [adult_row(i, y, s) for i in range(n_train) for y, s in cells]
    test = [adult_row(i, y, s, test=True) for i in range(n_test) for y, s in cells]
    (root / "adult.data").write_text("\n".join(train) + "\n\n")
    (root / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(test) + "\n\n")
    return root


def build(root: Path, **options) -> adult.GroupDataset:
    """Build directly (no cache), so that files changed within a test are read again."""
    return DATASETS.get("adult")().build({**DATASETS.get("adult").option_defaults(), **options}, str(root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_adult(tmp_path / "adult")


def test_counts_per_split_and_group(root):
    data = build(root)
    data.validate()
    assert data.group_names == ["<=50K,female", "<=50K,male", ">50K,female", ">50K,male"]
    assert data.class_names == ["<=50K", ">50K"] and data.attr_names == ["female", "male"]
    counts = data.counts_table()
    assert counts["train"] == [32] * 4  # 80/20 of 40 per group, stratified by group
    assert counts["val"] == [8] * 4
    assert counts["test"] == [N_TEST] * 4  # junk line and trailing blank lines skipped
    assert [s.name for s in data.spaces] == ["tabular"] and data.spaces[0].kind == "vector"


def test_labels_groups_and_rows_follow_the_files(root):
    data = build(root)
    cells = [(y, s) for y in (0, 1) for s in (0, 1)]
    y = [c[0] for c in cells] * N_TRAIN + [c[0] for c in cells] * N_TEST
    a = [c[1] for c in cells] * N_TRAIN + [c[1] for c in cells] * N_TEST
    assert data.y.tolist() == y  # the '.' of the test labels is ignored
    assert data.a.tolist() == a
    assert torch.equal(data.g, 2 * data.y + data.a)
    assert torch.equal(data.row, torch.arange(len(y))) and torch.all(data.space == 0)
    assert torch.all(data.split_code[4 * N_TRAIN :] == 2) and torch.all(data.split_code[: 4 * N_TRAIN] < 2)


def test_features_are_standardised_and_one_hot(root):
    data = build(root)
    x = data.spaces[0].x
    assert x.dtype == torch.float32 and torch.isfinite(x).all()
    train = data.split_code == 0
    numeric = x[train, : len(adult.NUMERIC)].double()
    varying = numeric.std(0) > 0  # capital-loss is constant here: centred, not scaled
    assert torch.allclose(numeric.mean(0), torch.zeros(6, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(
        numeric[:, varying].std(0, unbiased=False), torch.ones(int(varying.sum()), dtype=torch.float64)
    )
    one_hot = x[:, len(adult.NUMERIC) :]
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    per_row = one_hot.sum(1)
    first_test = 4 * N_TRAIN
    assert torch.all(per_row[:first_test] == len(adult.CATEGORICAL))  # every categorical has exactly one 1
    unseen = torch.arange(first_test, first_test + 4)  # the 'Atlantis' rows (test row i = 0 of every cell)
    assert torch.all(per_row[unseen] == len(adult.CATEGORICAL) - 1)  # unseen country: all zeros
    assert torch.all(per_row[first_test + 4 :] == len(adult.CATEGORICAL))
    with_sex = build(root, sex_feature=True).spaces[0].x
    assert with_sex.shape[1] == x.shape[1] + 2


def test_missing_values_get_their_own_category_and_the_training_mean(tmp_path):
    root = write_adult(tmp_path)
    lines = (root / "adult.data").read_text().splitlines()
    fields = lines[0].split(", ")
    fields[0] = "?"  # a missing age
    lines[0] = ", ".join(fields)
    (root / "adult.data").write_text("\n".join(lines) + "\n")
    train, numbers = adult.read_table(root / "adult.data")
    test, _ = adult.read_table(root / "adult.test")
    num_train = adult.numeric(train, numbers, root / "adult.data")
    assert np.isnan(num_train[0, 0]) and np.isfinite(num_train[1:]).all()
    num_test = adult.numeric(test, np.arange(len(test)), root / "adult.test")
    fit = np.ones(len(train), dtype=bool)
    x_train, x_test, names = adult.encode(train, test, num_train, num_test, fit, adult.CATEGORICAL)
    assert "workclass=missing" in names and "occupation=missing" in names and "workclass=?" not in names
    assert "native-country=Atlantis" not in names
    assert x_train[0, 0] == 0.0  # missing number -> training mean -> 0 after standardising
    assert x_train.shape[1] == x_test.shape[1] == len(names)
    missing_col = names.index("workclass=missing")
    assert x_train[8, missing_col] == 1.0 and x_train[0, missing_col] == 0.0  # rows 8..11 have i = 2: '?'


def test_construction_is_deterministic_and_seeded(root):
    a, b, c = build(root, seed=1), build(root, seed=1), build(root, seed=2)
    assert torch.equal(a.split_code, b.split_code) and torch.equal(a.spaces[0].x, b.spaces[0].x)
    assert not torch.equal(a.split_code, c.split_code)
    assert c.counts_table() == a.counts_table()


def _replace_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "file, number, text, expected",
    [
        ("adult.data", 5, "39, State-gov, 77516, Bachelors", "4 comma-separated fields, expected 15"),
        ("adult.test", 3, adult_row(1, 0, 0, test=True).replace("<=50K.", "maybe."), "income 'maybe'"),
        ("adult.data", 7, adult_row(1, 1, 0).replace("Female", "F"), "sex 'F'"),
        ("adult.data", 2, "x" + adult_row(1, 1, 0), "age 'x"),
    ],
)
def test_malformed_rows_name_the_file_and_line(root, file, number, text, expected):
    _replace_line(root / file, number, text)
    with pytest.raises(BenchError) as err:
        build(root)
    assert f"{file} line {number}" in str(err.value) and expected in str(err.value)


@pytest.mark.parametrize("file", ["adult.data", "adult.test"])
def test_missing_file_names_file_and_folder(root, file):
    (root / file).unlink()
    with pytest.raises(BenchError, match=f"file {file} not found in {root.resolve()}"):
        build(root)


def test_needs_data_root(root):
    assert DATASETS.get("adult").needs_data_root
    with pytest.raises(BenchError, match="--data-root"):
        DATASETS.get("adult")().build(DATASETS.get("adult").option_defaults(), None)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=300)


def test_cli_run_end_to_end(tmp_path):
    root = write_adult(tmp_path / "data")
    out = tmp_path / "results"
    args = ("run", "--methods", "erm", "--dataset", "adult", "--data-root", str(root), "--seeds", "0", "--quick")
    done = cli(*args, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "adult" / "leaderboard.csv").is_file()


def test_cli_malformed_file(tmp_path):
    """A malformed file is an input error before anything is written: exit 2 and one ``error:`` line naming the
    file and line, for ``describe`` and for ``run`` (which builds the dataset before the first run trains)."""
    root = write_adult(tmp_path / "data")
    _replace_line(root / "adult.test", 4, "1, 2, 3")
    expected = (
        f"error: {root / 'adult.test'} line 4: 3 comma-separated fields, expected 15 ({', '.join(adult.COLUMNS)})"
    )
    described = cli("describe", "adult", "--data-root", str(root))
    assert described.returncode == 2, described.stdout + described.stderr
    assert described.stderr.strip().splitlines() == [expected]
    out = tmp_path / "results"
    args = ("run", "--methods", "erm", "--dataset", "adult", "--data-root", str(root), "--seeds", "0", "--quick")
    ran = cli(*args, "--out", str(out))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert ran.stderr.strip().splitlines() == [expected]
    assert not list(out.rglob("result.json")) and not (out / "adult" / "leaderboard.csv").exists()
