"""``embeddings``: precomputed features from one ``.npz``: classes, attributes and groups (from the cells or the
file's ``g``), names, the file's split, every bad input in one line, and the CLI end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import bench_in_process

from benchmark.core.errors import BenchError
from benchmark.data.embeddings import Embeddings


def arrays(n: int = 120, **changes) -> dict[str, np.ndarray]:
    """Two classes × two attributes in every run of four rows, 8 features, such runs in train, train, val, test in
    turn."""
    rng = np.random.default_rng(0)
    y, a = np.arange(n) % 2, (np.arange(n) // 2) % 2
    found = {
        "features": rng.normal(size=(n, 8)).astype(np.float32) + y[:, None],
        "y": y,
        "a": a,
        "split": np.array(["train", "train", "val", "test"])[(np.arange(n) // 4) % 4],
        "class_names": np.array(["landbird", "waterbird"]),
        "attr_names": np.array(["land", "water"]),
    }
    return {k: v for k, v in {**found, **changes}.items() if v is not None}


def save(tmp_path: Path, name: str = "feats.npz", **changes) -> Path:
    path = tmp_path / name
    np.savez(path, **arrays(**changes))
    return path


def build(path: Path):
    data = Embeddings().build(Embeddings.option_defaults(), str(path))
    data.validate()
    return data


def test_names_groups_and_split_come_from_the_file(tmp_path):
    data = build(save(tmp_path))
    assert data.class_names == ["landbird", "waterbird"] and data.attr_names == ["land", "water"]
    assert data.group_names == ["landbird,land", "landbird,water", "waterbird,land", "waterbird,water"]
    assert data.counts_table() == {"train": [16] * 4, "val": [7] * 4, "test": [7] * 4}
    np.testing.assert_array_equal(data.spaces[0].x.numpy(), arrays()["features"].astype(np.float32))
    assert data.spaces[0].kind == "vector" and "120 rows of 8 features" in data.description


def test_strings_name_themselves_and_g_overrides_the_cells(tmp_path):
    n = 120
    data = build(save(tmp_path, y=np.array(["no", "yes"])[np.arange(n) % 2], class_names=None, attr_names=None,
                      g=np.arange(n) % 3, group_names=np.array(["first", "second", "third"]),
                      split=(np.arange(n) // 3) % 3))  # fmt: skip
    assert data.class_names == ["no", "yes"] and data.attr_names == ["0", "1"]
    assert data.group_names == ["first", "second", "third"]
    assert data.counts_table()["train"] == [14, 14, 14], "40 runs of the three groups, every third in train"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y": None}, "lacks the array(s) y"),
        ({"y": np.zeros(120, dtype=int)}, "one class"),
        ({"y": np.arange(120) % 2 - 1}, "non-negative integers or strings"),
        ({"a": np.linspace(0, 1, 120)}, "non-negative integers or strings"),
        ({"a": np.zeros(7, dtype=int)}, "array 'a' has shape (7,), expected (120,)"),
        ({"split": np.array(["train", "holdout"] * 60)}, "split[1] is 'holdout'"),
        ({"class_names": np.array(["landbird"])}, "'class_names' names 1 values but 'y' reaches 1"),
        ({"features": np.full((120, 8), np.nan)}, "features"),
        ({"features": np.zeros(120)}, "'features' must be a non-empty n × d array"),
        ({"y": np.array([None] * 120, dtype=object)}, "not a readable .npz file"),
    ],
)
def test_bad_arrays_are_one_line(tmp_path, changes, message):
    with pytest.raises(BenchError) as caught:
        build(save(tmp_path, **changes))
    assert message in str(caught.value) and "\n" not in str(caught.value), str(caught.value)


def test_bad_files_are_one_line(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    (tmp_path / "feats.npy").write_bytes(b"")
    for path, message in [
        (tmp_path / "absent.npz", "not found"),
        (tmp_path / "junk.npz", "not a readable .npz file"),
        (tmp_path / "feats.npy", "expected a .npz file"),
    ]:
        with pytest.raises(BenchError) as caught:
            build(path)
        assert message in str(caught.value), str(caught.value)


def test_cli_runs_methods_on_embeddings_and_refuses_a_bad_file_writing_nothing(tmp_path):
    out, path = tmp_path / "results", save(tmp_path)
    done = bench_in_process("run", "--methods", "erm,jtt", "--dataset", "embeddings", "--data-root", str(path),
                            "--seeds", "0", "--quick", "--workers", "1", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.glob("embeddings/*/*/result.json"))) == 2
    bad = save(tmp_path, "bad.npz", split=None)
    refused = bench_in_process("run", "--methods", "erm", "--dataset", "embeddings", "--data-root", str(bad), "--quick",
                               "--out", str(tmp_path / "nothing"))  # fmt: skip
    assert refused.returncode == 2 and "lacks the array(s) split" in refused.stdout + refused.stderr
    assert not (tmp_path / "nothing").exists()
