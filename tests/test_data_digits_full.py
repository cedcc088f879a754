"""``digits-hetero-full``: MNIST IDX, USPS bz2 LIBSVM and SVHN .mat readers, splits, caps, errors, and the CLI."""

from __future__ import annotations

import bz2
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.io import savemat

import benchmark.data.digits_hetero_full as digits_full
from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS

# samples per class in each fake file: (train, test); the train files split 5/6 : 1/6 per class
PER_CLASS = {"mnist": (6, 2), "usps": (6, 3), "svhn": (12, 2)}
CLI = "import benchmark.data.digits_hetero_full; from benchmark.cli import app; app()"


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """An IDX file: big-endian magic and sizes, then the uint8 data."""
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, part: str, n: int) -> None:
    """Image i has pixel (0, 0) = i, pixel (3, 5) = 255 and label i % 10."""
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)
    images[:, 3, 5] = 255
    image_name, label_name = digits_full.MNIST_FILES[part]
    (root / image_name).parent.mkdir(parents=True, exist_ok=True)
    (root / image_name).write_bytes(idx_bytes(0x803, images))
    (root / label_name).write_bytes(idx_bytes(0x801, np.arange(n) % 10))


def usps_line(i: int) -> str:
    """Line i: digit i % 10 (label + 1), pixel 1 encodes i, pixel 2 = 1, pixel 3 = -1, pixel 256 left out."""
    values = {1: -1.0 + i / 100, 2: 1.0, 3: -1.0, **{j: 0.25 for j in range(4, 256)}}
    return f"{i % 10 + 1} " + " ".join(f"{j}:{v:.6f}" for j, v in values.items())


def write_usps(root: Path, part: str, n: int) -> None:
    text = "\n".join(usps_line(i) for i in range(n)) + "\n"
    (root / digits_full.USPS_FILES[part]).write_bytes(bz2.compress(text.encode()))


def write_svhn(root: Path, part: str, n: int) -> None:
    """X is 32×32×3×n (H, W, C, n): image i has X[0, 0, 0, i] = i and X[1, 2, 2, i] = 200; y = 10 for digit 0."""
    x = np.zeros((32, 32, 3, n), dtype=np.uint8)
    x[0, 0, 0] = np.arange(n)
    x[1, 2, 2] = 200
    y = (np.arange(n) % 10).reshape(n, 1)
    y[y == 0] = 10
    savemat(root / digits_full.SVHN_FILES[part], {"X": x, "y": y.astype(np.uint8)})


WRITERS = {"mnist": write_mnist, "usps": write_usps, "svhn": write_svhn}


def write_all(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, (train, test) in PER_CLASS.items():
        WRITERS[name](root, "train", 10 * train)
        WRITERS[name](root, "test", 10 * test)
    return root


def build(root: Path, **options):
    """Check the options and build directly (no cache), so that files changed within a test are read again."""
    cls = DATASETS.get("digits-hetero-full")
    return cls().build(cls.check_options({**cls.option_defaults(), **options}), str(root))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_all(tmp_path / "data")


def source_index(data, s: int) -> torch.Tensor:
    """The index i each row of space s was written with (see the writers)."""
    x = data.spaces[s].x
    if s == 1:
        return torch.round(x[:, 0, 0, 0] * 200).long()  # (value + 1) / 2 with value = -1 + i / 100
    return torch.round(x[:, 0, 0, 0] * 255).long()


def test_counts_shapes_and_groups(root):
    data = build(root)
    data.validate()
    assert data.group_names == ["mnist", "usps", "svhn"] == data.attr_names
    assert data.class_names == [str(c) for c in range(10)]
    assert [s.shape for s in data.spaces] == [(1, 28, 28), (1, 16, 16), (3, 32, 32)]
    assert all(s.kind == "image" and s.x.dtype == torch.float32 for s in data.spaces)
    counts = data.counts_table()
    assert counts["train"] == [50, 50, 100]  # 5/6 of each class's training samples
    assert counts["val"] == [10, 10, 20]
    assert counts["test"] == [20, 30, 20]
    assert torch.equal(data.g, data.space) and torch.equal(data.a, data.space)
    for g in range(3):
        for split in range(3):
            classes = data.y[(data.g == g) & (data.split_code == split)]
            assert torch.equal(torch.bincount(classes, minlength=10), torch.full((10,), len(classes) // 10))


def test_pixels_labels_and_rows_follow_the_files(root):
    data = build(root)
    for s, space in enumerate(data.spaces):
        assert space.x.min() >= 0 and space.x.max() <= 1
        members = data.space == s
        rows = data.row[members]
        assert torch.equal(rows, torch.arange(len(space.x)))  # rows index each space once, in order
        index = source_index(data, s)[rows]
        assert torch.equal(data.y[members], index % 10)  # SVHN 10 -> 0, USPS label - 1
        split = data.split_code[members]
        train_file = index[split < 2].sort().values
        assert torch.equal(train_file, torch.arange(10 * PER_CLASS[space.name][0]))  # train + val = the file
        assert torch.equal(index[split == 2], torch.arange(10 * PER_CLASS[space.name][1]))  # test in file order
    mnist, usps, svhn = (s.x for s in data.spaces)
    assert torch.all(mnist[:, 0, 3, 5] == 1.0) and torch.all(mnist[:, 0, 5, 3] == 0.0)
    assert torch.all(usps[:, 0, 0, 1] == 1.0) and torch.all(usps[:, 0, 0, 2] == 0.0)  # [-1, 1] -> [0, 1]
    assert torch.all(usps[:, 0, 15, 15] == 0.5)  # a pixel the line leaves out is 0 -> 0.5
    assert torch.allclose(usps[:, 0, 1, 0], torch.tensor(0.625))  # pixel 17 = row 1, column 0
    assert torch.allclose(svhn[:, 2, 1, 2], torch.tensor(200 / 255))  # X[h, w, c, i] -> x[i, c, h, w]
    assert torch.all(svhn[:, 2, 2, 1] == 0) and torch.all(svhn[:, 0, 1, 2] == 0)


def test_construction_is_deterministic_and_seeded(root):
    a, b, c = build(root, seed=1), build(root, seed=1), build(root, seed=2)
    assert torch.equal(a.split_code, b.split_code) and all(torch.equal(p.x, q.x) for p, q in zip(a.spaces, b.spaces))
    assert not torch.equal(source_index(a, 0), source_index(c, 0))  # another train/val cut
    assert a.counts_table() == c.counts_table()


def test_max_per_group_caps_every_split_stratified(root):
    full, capped = build(root), build(root, max_per_group=10)
    assert capped.counts_table() == {"train": [10, 10, 10], "val": [10, 10, 10], "test": [10, 10, 10]}
    for g in range(3):
        for split in range(3):
            classes = capped.y[(capped.g == g) & (capped.split_code == split)]
            assert torch.bincount(classes, minlength=10).tolist() == [1] * 10
        # the cap picks from the same train/val cut
        for split in (0, 1):
            kept = set(source_index(capped, g)[capped.row[(capped.g == g) & (capped.split_code == split)]].tolist())
            cut = set(source_index(full, g)[full.row[(full.g == g) & (full.split_code == split)]].tolist())
            assert kept <= cut
    again = build(root, max_per_group=10)
    assert all(torch.equal(p.x, q.x) for p, q in zip(capped.spaces, again.spaces))
    assert build(root, max_per_group=1000).counts_table() == full.counts_table()
    with pytest.raises(BenchError, match="max_per_group"):
        build(root, max_per_group=-1)


def test_take_stratified_is_proportional():
    y = np.repeat(np.arange(3), [60, 30, 10])
    chosen = digits_full.take_stratified(y, 20, np.random.default_rng(0))
    assert len(chosen) == 20 and len(set(chosen.tolist())) == 20
    assert np.bincount(y[chosen], minlength=3).tolist() == [12, 6, 2]


def _mnist(root: Path, part: str = "train", which: int = 0) -> Path:
    return root / digits_full.MNIST_FILES[part][which]


@pytest.mark.parametrize(
    "file, corrupt, expected",
    [
        ("MNIST/raw/train-images-idx3-ubyte", lambda p: p.write_bytes(idx_bytes(0x801, np.zeros(5))), "magic"),
        ("MNIST/raw/t10k-images-idx3-ubyte", lambda p: p.write_bytes(p.read_bytes()[:-7]), "truncated IDX"),
        ("MNIST/raw/train-labels-idx1-ubyte", lambda p: p.write_bytes(p.read_bytes()[:6]), "truncated IDX"),
        ("MNIST/raw/train-labels-idx1-ubyte", lambda p: p.write_bytes(p.read_bytes() + b"x"), "trailing bytes"),
        ("MNIST/raw/t10k-labels-idx1-ubyte", lambda p: p.write_bytes(idx_bytes(0x801, np.arange(3))), "3 labels"),
        ("MNIST/raw/train-labels-idx1-ubyte", lambda p: p.write_bytes(idx_bytes(0x801, np.full(60, 12))), "12"),
        ("usps.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:0.5 2\n")), "usps.bz2 line 1: malformed"),
        ("usps.t.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:0.5\n11 1:0.5\n")), "usps.t.bz2 line 2: label"),
        ("usps.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:0.5\n\n4 1:abc\n")), "usps.bz2 line 3: malformed"),
        ("usps.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:0.5\nx 1:0.5\n")), "line 2: label 'x'"),
        ("usps.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:0.5\n4 300:0.5\n")), "line 2: feature index"),
        ("usps.bz2", lambda p: p.write_bytes(bz2.compress(b"3 1:7\n")), "line 1: pixel value"),
        ("usps.t.bz2", lambda p: p.write_bytes(b"3 1:0.5\n"), "not a readable bz2"),
        ("train_32x32.mat", lambda p: savemat(p, {"X": np.zeros((32, 32, 5), np.uint8), "y": np.ones((5, 1))}), "X"),
        ("test_32x32.mat", lambda p: savemat(p, {"X": np.zeros((28, 28, 3, 4), np.uint8), "y": np.ones((4, 1))}), "X"),
        ("test_32x32.mat", lambda p: savemat(p, {"X": np.zeros((32, 32, 3, 4), np.uint8), "y": np.ones((3, 1))}), "y"),
        ("test_32x32.mat", lambda p: savemat(p, {"X": np.zeros((32, 32, 3, 4), np.uint8)}), "'y' not found"),
        ("train_32x32.mat", lambda p: p.write_bytes(b"not a mat file"), "not a readable MATLAB"),
        ("test_32x32.mat", lambda p: savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": [[3], [0]]}), "label 0"),
        (
            "MNIST/raw/t10k-images-idx3-ubyte",
            lambda p: p.write_bytes(idx_bytes(0x803, np.zeros((20, 16, 16)))),
            "16×16",
        ),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(root, file, corrupt, expected):
    corrupt(root / file)
    with pytest.raises(BenchError) as err:
        build(root)
    message = str(err.value)
    assert Path(file).name in message and expected in message, message


@pytest.mark.parametrize(
    "file",
    [
        *digits_full.MNIST_FILES["train"],
        *digits_full.MNIST_FILES["test"],
        "usps.bz2",
        "usps.t.bz2",
        *digits_full.SVHN_FILES.values(),
    ],
)
def test_missing_file_names_file_and_folder(root, file):
    (root / file).unlink()
    with pytest.raises(BenchError, match=f"file {file} not found in {root.resolve()}"):
        build(root)


def test_needs_data_root():
    cls = DATASETS.get("digits-hetero-full")
    assert cls.needs_data_root and cls.train_defaults == {"epochs": 10}
    with pytest.raises(BenchError, match="--data-root"):
        cls().build(cls.option_defaults(), None)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLI, *args], capture_output=True, text=True, timeout=300)


def run_args(root: Path) -> tuple[str, ...]:
    return ("run", "--methods", "erm", "--dataset", "digits-hetero-full", "--data-root", str(root), "--seeds", "0")


def test_cli_run_end_to_end(tmp_path):
    root, out = write_all(tmp_path / "data"), tmp_path / "results"
    done = cli(*run_args(root), "--quick", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "digits-hetero-full" / "leaderboard.csv").is_file()


def test_cli_malformed_file(tmp_path):
    """A malformed file is an input error before anything is written: exit 2 and one ``error:`` line naming it
    (``run`` builds the dataset before the first run trains)."""
    root, out = write_all(tmp_path / "data"), tmp_path / "results"
    _mnist(root, "test").write_bytes(idx_bytes(0x803, np.zeros((2, 28, 28)))[:-1])
    ran = cli(*run_args(root), "--quick", "--out", str(out))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "t10k-images-idx3-ubyte" in lines[0]
    assert "truncated IDX" in lines[0]
    assert not list(out.rglob("result.json"))
