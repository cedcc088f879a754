"""``table``: a user's CSV or Parquet file as a dataset: groups, splits, the encoding on training statistics only
(against a float64 reference), CSV and Parquet alike, every bad input in one line, and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import bench_in_process

from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS
from benchmark.data.table import Table

SETS = ("--set", "data.target=label", "--set", "data.attributes=sex")


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """Four (label × sex) cells, a numeric column with a missing value, a categorical one with missing values,
    an integer-coded column and a split column (train, val, test in turn)."""
    rng = np.random.default_rng(seed)
    sex = np.where(np.arange(n) % 4 < 2, "F", "M")
    label = np.where(np.arange(n) % 2 == 0, "no", "yes")
    size = rng.normal(10, 3, n)
    size[3] = np.nan
    color = np.array(["red", "blue", None, "green"], dtype=object)[np.arange(n) % 4]
    part = np.array(["train", "train", "train", "val", "test"])[np.arange(n) % 5]
    return pd.DataFrame(
        {"size": size, "color": color, "zip": np.arange(n) % 3, "sex": sex, "label": label, "part": part}
    )


def build(path: Path, **options):
    """Built directly (no cache), checked as the CLI checks its options."""
    checked = Table.check_options({**Table.option_defaults(), "target": "label", "attributes": "sex", **options})
    data = Table().build(checked, str(path))
    data.validate()
    return data


@pytest.fixture
def table_file(tmp_path) -> Path:
    path = tmp_path / "people.csv"
    frame().to_csv(path, index=False)
    return path


def test_groups_are_the_cells_that_occur_and_the_split_column_is_honoured(table_file):
    data = build(table_file, split="part")
    assert data.class_names == ["no", "yes"] and data.attr_names == ["sex=F", "sex=M"]
    assert data.group_names == ["no,sex=F", "no,sex=M", "yes,sex=F", "yes,sex=M"]
    part = frame()["part"].to_numpy()
    assert data.counts_table() == {s: [int(np.sum(part == s)) // 4] * 4 for s in ("train", "val", "test")}
    assert data.spaces[0].kind == "vector" and data.minority_mask.tolist() == [False] * 4


def test_without_a_split_column_the_split_is_seeded_and_stratified_by_group(table_file):
    counts = build(table_file, split="", val_fraction=0.25, test_fraction=0.25).counts_table()
    assert counts["train"] == [25] * 4, "50 rows per group, half of them train"
    assert all(v + t == 25 and abs(v - t) <= 1 for v, t in zip(counts["val"], counts["test"]))
    again, other = build(table_file), build(table_file, seed=1)
    assert torch_equal(build(table_file).split_code, again.split_code)
    assert not torch_equal(again.split_code, other.split_code), "the data seed draws the split"


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_features_use_training_statistics_only(table_file):
    raw = frame()
    raw.loc[raw["part"] == "test", "size"] = 1e6  # test values far out: they must not move the statistics
    raw.to_csv(table_file, index=False)
    data = build(table_file, split="part", features="size,color,zip", categorical="zip")
    x = data.spaces[0].x.double().numpy()
    train = (raw["part"] == "train").to_numpy()
    size = raw["size"].to_numpy(dtype=np.float64)
    seen = size[train & ~np.isnan(size)]
    expected = (np.where(np.isnan(size), np.median(seen), size) - seen.mean()) / seen.std()
    np.testing.assert_allclose(x[:, 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(x[:, 1], np.isnan(size))  # the size=missing indicator
    colors = raw["color"].fillna("missing").to_numpy()
    for j, level in enumerate(["blue", "green", "missing", "red"]):  # sorted training levels
        np.testing.assert_array_equal(x[:, 2 + j], colors == level)
    for j, level in enumerate(["0", "1", "2"]):  # zip one-hot as asked
        np.testing.assert_array_equal(x[:, 6 + j], (raw["zip"].astype(str) == level).to_numpy())
    assert x.shape[1] == 9
    assert "size 1 (the training median, with an indicator)" in data.description
    assert "color 50 (its own level)" in data.description


def test_a_level_unseen_in_training_encodes_as_zeros(table_file):
    raw = frame()
    raw.loc[raw["part"] == "test", "color"] = "purple"
    raw.to_csv(table_file, index=False)
    data = build(table_file, split="part", features="color")
    x = data.spaces[0].x.numpy()
    assert not x[(raw["part"] == "test").to_numpy()].any() and x[(raw["part"] == "train").to_numpy()].sum(1).min() == 1


def test_csv_and_parquet_give_the_same_dataset(tmp_path, table_file):
    parquet = tmp_path / "people.parquet"
    frame().to_parquet(parquet)
    a, b = build(table_file, split="part"), build(parquet, split="part")
    assert a.group_names == b.group_names and torch_equal(a.g, b.g) and torch_equal(a.split_code, b.split_code)
    np.testing.assert_allclose(a.spaces[0].x.numpy(), b.spaces[0].x.numpy())


def test_two_attribute_columns_make_their_combinations_the_attribute(table_file):
    data = build(table_file, attributes="sex,zip", split="part")
    assert data.attr_names[:2] == ["sex=F,zip=0", "sex=F,zip=1"] and len(data.attr_names) == 6
    assert len(data.group_names) == 12


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    ("case", "options", "message"),
    [
        ("missing", {}, "not found"),
        ("people.csv", {"target": "income"}, "column 'income' is not in"),
        ("people.csv", {"features": "size,height"}, "column 'height' is not in"),
        ("one-class.csv", {}, "has one class ('no')"),
        ("test-only-cell.csv", {"split": "part"}, "no training sample"),
        ("bad-number.csv", {}, "line 9: column 'size' value 'tall' is not a finite number"),
        ("bad-split.csv", {"split": "part"}, "line 3: split column 'part' value 'holdout' is not train, val or test"),
        ("unlabelled.csv", {}, "line 4: the target column 'label' is missing"),
        ("empty.csv", {}, "is empty"),
        ("header-only.csv", {}, "has no data rows"),
        ("garbage.parquet", {}, "is not a readable parquet file"),
        ("people.txt", {}, "expected a .csv"),
        ("people.csv", {"features": "sex"}, "two roles"),
    ],
)
def test_bad_input_is_one_line(tmp_path, table_file, case, options, message):
    raw = frame()
    files = {
        "one-class.csv": lambda: raw.assign(label="no").to_csv(tmp_path / case, index=False),
        "test-only-cell.csv": lambda: raw.assign(part=np.where(raw["label"] == "yes", raw["part"], "test")).to_csv(
            tmp_path / case, index=False
        ),
        "bad-number.csv": lambda: (
            raw.astype({"size": object})
            .assign(size=lambda f: f["size"].where(f.index != 7, "tall"))
            .to_csv(tmp_path / case, index=False)
        ),
        "bad-split.csv": lambda: raw.assign(part=raw["part"].where(raw.index != 1, "holdout")).to_csv(
            tmp_path / case, index=False
        ),
        "unlabelled.csv": lambda: raw.assign(label=raw["label"].where(raw.index != 2, None)).to_csv(
            tmp_path / case, index=False
        ),
        "empty.csv": lambda: write(tmp_path, case, ""),
        "header-only.csv": lambda: write(tmp_path, case, "size,color,zip,sex,label,part\n"),
        "garbage.parquet": lambda: write(tmp_path, case, b"\x00\x01not parquet at all"),
        "people.txt": lambda: write(tmp_path, case, "a,b\n1,2\n"),
    }
    if case in files:
        files[case]()
    path = table_file if case == "people.csv" else tmp_path / case
    with pytest.raises(BenchError) as caught:
        build(path, **options)
    text = str(caught.value)
    assert message in text and "\n" not in text, text


def test_target_and_attributes_must_be_named(table_file):
    with pytest.raises(BenchError, match="needs --set data.target=COLUMN"):
        build(table_file, attributes="")
    with pytest.raises(BenchError, match="leave a training share"):
        Table.check_options({**Table.option_defaults(), "target": "y", "attributes": "a", "val_fraction": 0.5,
                             "test_fraction": 0.5})  # fmt: skip


def test_the_files_content_is_part_of_a_runs_identity(table_file):
    before = DATASETS.get("table").fingerprint(str(table_file))
    frame(seed=1).to_csv(table_file, index=False)
    assert DATASETS.get("table").fingerprint(str(table_file)) not in (None, before)


def test_cli_runs_methods_on_a_table_and_refuses_bad_input_writing_nothing(tmp_path, table_file):
    out = tmp_path / "results"
    done = bench_in_process("run", "--methods", "erm,groupdro", "--dataset", "table", "--data-root",
                            str(table_file), *SETS, "--set", "data.split=part", "--seeds", "0", "--quick",
                            "--workers", "1", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.glob("table/*/*/result.json"))) == 2
    refused = bench_in_process("run", "--methods", "erm", "--dataset", "table", "--data-root", str(table_file),
                               "--set", "data.target=label", "--set", "data.attributes=height", "--quick",
                               "--out", str(tmp_path / "nothing"))  # fmt: skip
    assert refused.returncode == 2 and "column 'height' is not in" in refused.stdout + refused.stderr
    assert len((refused.stdout + refused.stderr).strip().splitlines()) == 1, refused.stdout + refused.stderr
    assert not (tmp_path / "nothing").exists()


def test_an_identifier_column_is_refused_as_a_category(tmp_path):
    path = tmp_path / "ids.csv"
    frame(n=2500).assign(name=[f"person-{i}" for i in range(2500)]).to_csv(path, index=False)
    with pytest.raises(BenchError, match="column 'name' has 1500 distinct training values, over 1000"):
        build(path, split="part")
