"""Bad files under a ``--data-root``, as a new user makes them: symlink loops, metadata files of gigabytes, empty
names in a metadata table and images that cannot be decoded. Each is one ``error:`` line and exit code 2 before
anything trains; an image whose pixels are corrupt past a sound header fails its run naming the file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import bench_in_process, needs_torchvision
from PIL import Image
from test_data_adult import write_adult
from test_data_digits_full import write_all
from test_data_real_images import fake_celeba, fake_waterbirds, options

from benchmark.core.errors import BenchError
from benchmark.data import build_dataset
from benchmark.data.sources import MAX_TABLE_BYTES

TINY_IMAGES = ["--set", "data.image_size=16", "--set", "data.encoder=cnn", "--set", "data.workers=0"]
SETS = {"waterbirds": TINY_IMAGES, "celeba": TINY_IMAGES, "adult": [], "digits-hetero-full": []}
FIRST_FILE = {
    "waterbirds": "metadata.csv",
    "celeba": "list_attr_celeba.csv or list_attr_celeba.txt",
    "adult": "adult.data",
    "digits-hetero-full": "MNIST/raw/train-images-idx3-ubyte",
}
WRITERS = {"waterbirds": fake_waterbirds, "celeba": fake_celeba, "adult": write_adult, "digits-hetero-full": write_all}


def run_and_describe(tmp_path, dataset: str, root) -> list:
    """``bench run --quick`` (into a folder that must stay absent) and ``bench describe`` on ``root``."""
    out = tmp_path / "results"
    ran = bench_in_process(
        "run", "--dataset", dataset, "--methods", "erm", "--seeds", "0", "--quick", "--data-root", str(root),
        "--out", str(out), *SETS[dataset],
    )  # fmt: skip
    assert not out.exists(), "nothing is written for a rejected input"
    return [ran, bench_in_process("describe", dataset, "--data-root", str(root), *SETS[dataset])]


def assert_one_line(procs: list, line: str) -> None:
    for proc in procs:
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [f"error: {line}"]


@pytest.mark.parametrize("dataset", sorted(FIRST_FILE))
def test_a_data_root_that_is_a_symlink_loop_is_one_line(tmp_path, dataset):
    root = tmp_path / "data"
    root.symlink_to("data")
    message = f"symlink loop at {root} (while looking for {FIRST_FILE[dataset]} in {root})"
    assert_one_line(run_and_describe(tmp_path, dataset, root), message)


@pytest.mark.parametrize("dataset", sorted(FIRST_FILE))
def test_a_data_file_behind_a_symlink_loop_is_named(tmp_path, dataset):
    root = tmp_path / "data"
    root.mkdir()
    first = FIRST_FILE[dataset].split(" or ")[0]
    looping = root / first.split("/")[0]  # digits-hetero-full: the folder MNIST loops
    (root / "other").symlink_to(looping.name)
    looping.symlink_to("other")
    message = f"symlink loop at {looping} (while looking for {FIRST_FILE[dataset]} in {root})"
    assert_one_line(run_and_describe(tmp_path, dataset, root), message)


@pytest.mark.parametrize("dataset", sorted(FIRST_FILE))
@needs_torchvision
def test_symlink_loops_beside_the_data_files_are_harmless(tmp_path, dataset):
    root = tmp_path / "data"
    root.mkdir()
    WRITERS[dataset](root)
    (root / "loop").symlink_to(".")
    (root / "a").symlink_to("b")
    (root / "b").symlink_to("a")
    described = bench_in_process("describe", dataset, "--data-root", str(root), *SETS[dataset])
    assert described.returncode == 0, described.stderr


BIG_FILES = [
    ("waterbirds", False, "metadata.csv"),
    ("celeba", False, "list_attr_celeba.csv"),
    ("celeba", False, "list_eval_partition.csv"),
    ("celeba", True, "list_attr_celeba.txt"),
    ("celeba", True, "list_eval_partition.txt"),
    ("adult", False, "adult.data"),
    ("adult", False, "adult.test"),
]


@pytest.mark.parametrize("dataset, txt, name", BIG_FILES)
def test_a_metadata_file_over_the_size_limit_is_refused_unread(tmp_path, dataset, txt, name):
    root = tmp_path / "data"
    root.mkdir()
    fake_celeba(root, txt=txt) if dataset == "celeba" else WRITERS[dataset](root)
    with open(root / name, "r+b") as f:
        f.truncate(2 * MAX_TABLE_BYTES)  # sparse: nothing is written to disk
    size = f"2.0 GiB ({2 * MAX_TABLE_BYTES} bytes)"
    message = f"{root / name} is {size}, over the 1 GiB limit for a metadata file: not the dataset's file?"
    assert_one_line(run_and_describe(tmp_path, dataset, root), message)


def edit_line(path, number: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[number - 1] = edit(lines[number - 1])
    path.write_text("\n".join(lines) + "\n")


def blank_field(index: int, blank: str = ""):
    return lambda line: ",".join(blank if i == index else v for i, v in enumerate(line.split(",")))


EMPTY_NAMES = [
    ("waterbirds", "metadata.csv", 4, blank_field(1), "img_filename in row 3"),
    ("waterbirds", "metadata.csv", 2, blank_field(1, "  "), "img_filename in row 1"),
    ("celeba", "list_attr_celeba.csv", 6, blank_field(0), "image_id in row 5"),
    ("celeba", "list_eval_partition.csv", 3, blank_field(0), "image_id in row 2"),
]


@pytest.mark.parametrize("dataset, name, line, edit, what", EMPTY_NAMES)
def test_an_empty_name_in_a_metadata_table_names_the_row(tmp_path, dataset, name, line, edit, what):
    root = tmp_path / "data"
    root.mkdir()
    WRITERS[dataset](root)
    edit_line(root / name, line, edit)
    assert_one_line(run_and_describe(tmp_path, dataset, root), f"malformed {name}: empty {what} ({root / name})")


def truncated_jpeg(path, keep: float) -> None:
    """A 218×178 JPEG of noise cut to the first ``keep`` of its bytes."""
    pixels = np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


@needs_torchvision
def test_images_that_cannot_be_opened_are_named_before_training(tmp_path):
    root = tmp_path / "data"
    fake_waterbirds(root)
    (root / "003.Bird" / "bird_3.jpg").write_text("not an image\n")
    (root / "005.Bird" / "bird_5.jpg").write_bytes(b"")
    message = f"unreadable image file {root}/003.Bird/bird_3.jpg: not an image format PIL can read"
    assert_one_line(run_and_describe(tmp_path, "waterbirds", root), message + " (2 of 36 listed images unreadable)")
    celeba = tmp_path / "celeba"
    fake_celeba(celeba)
    truncated_jpeg(celeba / "img_align_celeba" / "000004.jpg", 0.01)  # the header is cut short
    with pytest.raises(BenchError) as error:
        build_dataset("celeba", options("celeba"), str(celeba))
    assert str(error.value) == (
        f"unreadable image file {celeba}/img_align_celeba/000004.jpg: OSError: Truncated File Read "
        "(1 of 24 listed images unreadable)"
    )


@needs_torchvision
def test_an_image_corrupt_past_its_header_fails_its_run_naming_the_file(tmp_path):
    root = tmp_path / "data"
    fake_waterbirds(root)
    broken = root / "003.Bird" / "bird_3.jpg"
    truncated_jpeg(broken, 2 / 3)
    data = build_dataset("waterbirds", options("waterbirds"), str(root))  # the header is sound
    with pytest.raises(BenchError, match=rf"^image {broken} could not be decoded: OSError: image file is truncated"):
        data.spaces[0].x.load(np.array([0, 3]))
    out = tmp_path / "results"
    ran = bench_in_process(
        "run", "--dataset", "waterbirds", "--methods", "erm", "--seeds", "0", "--quick", "--data-root", str(root),
        "--out", str(out), "--workers", "1", *TINY_IMAGES,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    (result,) = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    assert result["status"] == "failed"
    assert result["error"].startswith(f"BenchError: image {broken} could not be decoded: OSError: image file is trunc")
