"""``digits-hetero-full``: MNIST, USPS and SVHN digits, one feature space and group each, from ``--data-root``.

The real-data variant of ``digits-hetero`` (the 2025 note's digit experiments). Files, relative to the data root:
``MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed IDX, as torchvision leaves them),
``usps.bz2`` / ``usps.t.bz2`` (LIBSVM text, bz2-compressed) and ``train_32x32.mat`` / ``test_32x32.mat``
(SVHN's MATLAB files). Readers return raw arrays (uint8 or float32) and labels 0..9; images become float
tensors in [0, 1] only for the rows a build keeps.
"""

from __future__ import annotations

import bz2
import re
import struct
from pathlib import Path

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.core.registry import register_dataset
from benchmark.core.settings import Range
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.data.sources import data_file, stratified_parts

MNIST_FILES = {
    "train": ("MNIST/raw/train-images-idx3-ubyte", "MNIST/raw/train-labels-idx1-ubyte"),
    "test": ("MNIST/raw/t10k-images-idx3-ubyte", "MNIST/raw/t10k-labels-idx1-ubyte"),
}
USPS_FILES = {"train": "usps.bz2", "test": "usps.t.bz2"}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
IMAGES_MAGIC, LABELS_MAGIC = 0x00000803, 0x00000801
USPS_PIXELS = 256
MALFORMED = "malformed LIBSVM line, expected 'label index:value index:value ...'"
LIBSVM_FEATURES = re.compile(r"\s*(?:[^\s:]+:[^\s:]+(?:\s+|$))*")  # index:value pairs, space-separated
VAL_FRACTION = 1 / 6  # of each official training file, stratified by class


def read_idx(path: Path, magic: int, dims: int) -> np.ndarray:
    """An uncompressed IDX file of unsigned bytes: big-endian magic, ``dims`` sizes, then the data (uint8)."""
    raw = path.read_bytes()
    found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else magic
    if found != magic:
        raise BenchError(f"{path}: wrong IDX magic number 0x{found:08X}, expected 0x{magic:08X}")
    header = 4 * (1 + dims)
    if len(raw) < header:
        raise BenchError(f"{path}: truncated IDX file: {len(raw)} bytes, shorter than its {header}-byte header")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        what = "truncated IDX file" if len(raw) - header < size else "IDX file has trailing bytes"
        raise BenchError(
            f"{path}: {what}: header says {'×'.join(map(str, shape))} = {size} bytes of data, found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist(root: str | Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (n×1×H×W uint8) and labels of ``part`` (train/test)."""
    image_name, label_name = MNIST_FILES[part]
    image_path, label_path = data_file(root, image_name), data_file(root, label_name)
    images, labels = read_idx(image_path, IMAGES_MAGIC, 3), read_idx(label_path, LABELS_MAGIC, 1)
    if len(images) != len(labels):
        raise BenchError(f"{image_path} has {len(images)} images but {label_path.name} has {len(labels)} labels")
    if labels.max(initial=0) > 9:
        raise BenchError(f"{label_path}: label {labels.max()} is not a digit 0..9")
    return images[:, None], labels.astype(np.int64)


def read_usps(root: str | Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """USPS images (n×1×16×16 float32 in [0, 1]) and digit labels from bz2-compressed LIBSVM text.

    Each line is ``label idx:value ...`` with labels 1..10 for digits 0..9 (as torchvision reads them),
    indices 1..256 and values in [-1, 1], mapped to (value + 1) / 2; an index a line leaves out has value 0
    (LIBSVM's sparse format), i.e. 0.5 after mapping.
    """
    path = data_file(root, USPS_FILES[part])
    try:
        with bz2.open(path, "rt", encoding="ascii", errors="replace") as f:
            text = f.read()
    except (OSError, EOFError) as exc:  # not bz2, or cut short
        raise BenchError(f"{path}: not a readable bz2 file ({exc})") from None
    numbers, heads, rests = [], [], []
    for number, line in enumerate(text.splitlines(), 1):
        head, _, rest = line.strip().partition(" ")
        if not head:
            continue
        if not LIBSVM_FEATURES.fullmatch(rest):
            raise BenchError(f"{path} line {number}: {MALFORMED}")
        numbers.append(number)
        heads.append(head)
        rests.append(rest)
    if not heads:
        raise BenchError(f"{path}: no data lines")
    pixels, labels = parse_libsvm(path, np.array(numbers), heads, rests)
    return ((pixels + 1.0) / 2.0).reshape(-1, 1, 16, 16).astype(np.float32), labels


def parse_libsvm(path: Path, numbers: np.ndarray, heads: list[str], rests: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n×256 in [-1, 1]) and digits (label − 1) of syntactically valid lines, checked all at once;
    an error names the first offending line (``numbers`` are the lines' numbers in the file)."""
    try:
        label = np.array(heads, dtype=np.float64)
    except ValueError:
        bad = next(i for i, h in enumerate(heads) if not _is_number(h))
        raise BenchError(f"{path} line {numbers[bad]}: label '{heads[bad]}' is not a number") from None
    bad = np.flatnonzero((label != np.round(label)) | (label < 1) | (label > 10))
    if len(bad):
        raise BenchError(f"{path} line {numbers[bad[0]]}: label '{heads[bad[0]]}' is not one of 1..10 (digits 0..9)")
    per_line = np.array([rest.count(":") for rest in rests])
    try:
        pairs = np.array(" ".join(rests).replace(":", " ").split(), dtype=np.float64).reshape(-1, 2)
    except ValueError:
        bad = next(i for i, rest in enumerate(rests) if not all(map(_is_number, rest.replace(":", " ").split())))
        raise BenchError(f"{path} line {numbers[bad]}: {MALFORMED}") from None
    line = np.repeat(np.arange(len(heads)), per_line)
    index, value = pairs[:, 0], pairs[:, 1]
    bad = np.flatnonzero((index != np.round(index)) | (index < 1) | (index > USPS_PIXELS))
    if len(bad):
        raise BenchError(f"{path} line {numbers[line[bad[0]]]}: feature index outside 1..{USPS_PIXELS}")
    bad = np.flatnonzero(~(np.abs(value) <= 1.0 + 1e-6))
    if len(bad):
        raise BenchError(f"{path} line {numbers[line[bad[0]]]}: pixel value outside [-1, 1]")
    pixels = np.zeros((len(heads), USPS_PIXELS))
    pixels[line, index.astype(np.int64) - 1] = np.clip(value, -1.0, 1.0)
    return pixels, label.astype(np.int64) - 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_svhn(root: str | Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """SVHN images (n×3×32×32 uint8) and digit labels from a MATLAB file (X: 32×32×3×n, y: n×1, 10 for 0)."""
    from scipy.io import loadmat

    path = data_file(root, SVHN_FILES[part])
    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except Exception as exc:  # scipy raises several types for a file it cannot read
        raise BenchError(f"{path}: not a readable MATLAB v5 file ({type(exc).__name__}: {exc})") from None
    for key in ("X", "y"):
        if key not in mat:
            raise BenchError(f"{path}: variable '{key}' not found (expected X: 32×32×3×n and y: n×1)")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise BenchError(f"{path}: X has shape {'×'.join(map(str, x.shape))}, expected 32×32×3×n")
    if y.size != x.shape[3] or (y.ndim == 2 and 1 not in y.shape) or y.ndim > 2:
        raise BenchError(
            f"{path}: y has shape {'×'.join(map(str, y.shape))}, expected {x.shape[3]}×1 (one label per image)"
        )
    raw = y.reshape(-1)
    labels = raw.astype(np.int64)
    bad = np.flatnonzero((labels != raw) | (labels < 1) | (labels > 10))
    if len(bad):
        raise BenchError(f"{path}: label {raw[bad[0]]} is not one of 1..10 (10 for the digit 0)")
    if x.dtype != np.uint8:
        raise BenchError(f"{path}: X has dtype {x.dtype}, expected uint8")
    return x.transpose(3, 2, 0, 1), labels % 10


READERS = {"mnist": read_mnist, "usps": read_usps, "svhn": read_svhn}
FILES = {"mnist": {k: v[0] for k, v in MNIST_FILES.items()}, "usps": USPS_FILES, "svhn": SVHN_FILES}


def take_stratified(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` samples (all if fewer) whose classes follow ``y``'s proportions (±1 per class).

    Each class is randomly ordered; a sample's priority is its rank over its class size, so the first ``n``
    by priority interleave the classes in proportion.
    """
    if n >= len(y):
        return np.arange(len(y))
    order = np.lexsort((rng.random(len(y)), y))
    counts = np.bincount(y)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(y)) - starts[y[order]]
    priority = (rank + 0.5) / counts[y[order]]
    return np.sort(order[np.argsort(priority, kind="stable")[:n]])


def to_unit_float(images: np.ndarray) -> torch.Tensor:
    """Images as a contiguous float32 tensor in [0, 1] (uint8 divided by 255)."""
    if images.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


@register_dataset("digits-hetero-full")
class DigitsHeteroFull(DatasetBuilder):
    """Groups are feature spaces: MNIST (1×28×28), USPS (1×16×16) and SVHN (3×32×32), 10 classes each.

    Each source's official training file splits 5/6 train, 1/6 val, stratified by class with the data
    seed; its official test file is the test split. Option ``max_per_group`` (0 = all) keeps at most that
    many samples of each group in each split (a class-stratified random subset, chosen with the data seed
    after the train/val cut, so the cut does not depend on it), for quick runs.
    """

    description = (
        "Ten digit classes seen through three real datasets, one feature space and group each, as in the 2025 note's "
        "digit experiments: MNIST (1×28×28), USPS (1×16×16) and SVHN (3×32×32 colour house numbers), pixels in "
        "[0, 1]. Each official training file splits 5/6 train and 1/6 val stratified by class (data seed); the "
        "official test files are the test split. data.max_per_group caps every group's train, val and test."
    )
    options = {"max_per_group": 0}
    bounds = {"max_per_group": Range(0, 10**7)}  # 0 keeps everything
    train_defaults = {"epochs": 10}
    needs_data_root = True
    data_files = (*(f for pair in MNIST_FILES.values() for f in pair), *USPS_FILES.values(), *SVHN_FILES.values())

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        if data_root is None:
            raise BenchError(f"dataset {self.name} reads files: give --data-root PATH")
        cap = options["max_per_group"]
        spaces, labels, splits = [], [], []
        for s, (name, reader) in enumerate(READERS.items()):
            rng = np.random.default_rng([options["seed"], 0xD1F, s])
            train_x, train_y = reader(data_root, "train")
            test_x, test_y = reader(data_root, "test")
            if train_x.shape[1:] != test_x.shape[1:]:
                raise BenchError(
                    f"{name}: images in {FILES[name]['train']} are {'×'.join(map(str, train_x.shape[1:]))} but "
                    f"in {FILES[name]['test']} {'×'.join(map(str, test_x.shape[1:]))}"
                )
            part = stratified_parts(train_y, (1.0 - VAL_FRACTION, VAL_FRACTION), rng)
            chosen = [np.flatnonzero(part == 0), np.flatnonzero(part == 1)]
            if cap:
                chosen = [idx[take_stratified(train_y[idx], cap, rng)] for idx in chosen]
            keep_test = take_stratified(test_y, cap, rng) if cap else np.arange(len(test_y))
            x = torch.cat([to_unit_float(train_x[np.concatenate(chosen)]), to_unit_float(test_x[keep_test])])
            spaces.append(FeatureSpace(name, "image", x))
            labels.append(np.concatenate([train_y[chosen[0]], train_y[chosen[1]], test_y[keep_test]]))
            splits.append(np.repeat([0, 1, 2], [len(chosen[0]), len(chosen[1]), len(keep_test)]))
        space = np.concatenate([np.full(len(y), s) for s, y in enumerate(labels)])
        names = [s.name for s in spaces]
        train_sizes = [int((split == 0).sum()) for split in splits]
        return GroupDataset(
            name=self.name,
            spaces=spaces,
            space=torch.from_numpy(space),
            row=torch.from_numpy(np.concatenate([np.arange(len(y)) for y in labels])),
            y=torch.from_numpy(np.concatenate(labels)),
            a=torch.from_numpy(space),
            g=torch.from_numpy(space),
            split_code=torch.from_numpy(np.concatenate(splits)),
            class_names=[str(c) for c in range(10)],
            attr_names=names,
            group_names=names,
            description=self.description,
            minority=(int(np.argmin(train_sizes)),),  # the group with the fewest training images (USPS in full)
        )
