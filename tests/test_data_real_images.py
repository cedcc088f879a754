"""The real Waterbirds and CelebA loaders on tiny fake files in their exact formats, streamed from disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import bench, bench_in_process, needs_torchvision
from PIL import Image

from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS
from benchmark.data import build_dataset
from benchmark.data.batches import eval_batches
from benchmark.data.images import ImageFiles, prefetched
from benchmark.models import GroupModel, ResNet

TINY = {"image_size": 16, "encoder": "cnn", "workers": 0}
# (y, place, split) cells of the fake Waterbirds: every group in every split
WATERBIRDS_CELLS = [(y, p, s) for s in (0, 1, 2) for y in (0, 1) for p in (0, 1)]


def write_image(path, seed: int, size=(24, 20)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def fake_waterbirds(root, per_cell: int = 3) -> list[tuple[int, int, int]]:
    rows = ["img_id,img_filename,y,split,place,place_filename"]
    cells = [cell for cell in WATERBIRDS_CELLS for _ in range(per_cell)]
    for i, (y, place, split) in enumerate(cells):
        name = f"{i:03d}.Bird/bird_{i}.jpg"
        write_image(root / name, i)
        rows.append(f"{i + 1},{name},{y},{split},{place},/l/lake/{i}.jpg")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return cells


ATTRS = ["5_o_Clock_Shadow", "Attractive", "Blond_Hair", "Male", "Young"]


def fake_celeba(root, n: int = 24, txt: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    step = np.arange(n) // 3  # each split sees step 0..7: every combination of the bits below
    bits = {"5_o_Clock_Shadow": step % 2, "Attractive": step % 2, "Blond_Hair": step % 2, "Male": step // 2 % 2}
    bits["Young"] = step // 4 % 2
    values = np.stack([2 * bits[name] - 1 for name in ATTRS], axis=1)
    partition = np.arange(n) % 3
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        write_image(root / "img_align_celeba" / name, i, size=(218, 178))
    if txt:
        lines = [str(n), " ".join(ATTRS)] + [f"{name} " + "  ".join(map(str, row)) for name, row in zip(names, values)]
        (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        (root / "list_eval_partition.txt").write_text("".join(f"{m} {p}\n" for m, p in zip(names, partition)))
    else:
        header = "image_id," + ",".join(ATTRS)
        lines = [header] + [f"{name}," + ",".join(map(str, row)) for name, row in zip(names, values)]
        (root / "list_attr_celeba.csv").write_text("\n".join(lines) + "\n")
        rows = ["image_id,partition"] + [f"{m},{p}" for m, p in zip(names, partition)]
        (root / "list_eval_partition.csv").write_text("\n".join(rows) + "\n")
    return (values[:, ATTRS.index("Blond_Hair")] == 1), (values[:, ATTRS.index("Male")] == 1), partition


def options(name: str, **changes) -> dict:
    return {**DATASETS.get(name).option_defaults(), **TINY, **changes}


@needs_torchvision
def test_waterbirds_counts_groups_and_adjusted_weights(tmp_path):
    cells = fake_waterbirds(tmp_path)
    data = build_dataset("waterbirds", options("waterbirds"), str(tmp_path))
    assert data.group_names == ["landbird,land", "landbird,water", "waterbird,land", "waterbird,water"]
    assert data.counts_table() == {split: [3, 3, 3, 3] for split in ("train", "val", "test")}
    assert data.g.tolist() == [2 * y + p for y, p, _ in cells]
    assert data.summaries["adj_acc"] == [0.25] * 4
    assert isinstance(data.spaces[0].x, ImageFiles) and data.spaces[0].shape == (3, 16, 16)


@needs_torchvision
@pytest.mark.parametrize("txt", [False, True])
def test_celeba_csv_and_txt_formats(tmp_path, txt):
    blond, male, partition = fake_celeba(tmp_path, txt=txt)
    data = build_dataset("celeba", options("celeba"), str(tmp_path))
    assert data.y.tolist() == blond.astype(int).tolist() and data.a.tolist() == male.astype(int).tolist()
    assert data.split_code.tolist() == partition.tolist()
    assert data.group_names[3] == "Blond_Hair,Male"
    other = build_dataset("celeba", options("celeba", target="Attractive", attribute="Young"), str(tmp_path))
    assert other.group_names[0] == "not Attractive,not Young"


@needs_torchvision
def test_disk_batches_load_the_transformed_files_in_batch_order(tmp_path):
    fake_waterbirds(tmp_path)
    data = build_dataset("waterbirds", options("waterbirds", workers=2), str(tmp_path))
    source = data.spaces[0].x
    batches = list(prefetched(data, eval_batches(data, "val", 5)))
    assert [len(b) for b in batches] == [5, 5, 2]
    for batch in batches:
        rows = data.row[batch.idx].numpy()
        assert torch.equal(batch.inputs[0], source.load(rows))
    model = GroupModel(data)
    z = model.encode(data, batches[0])
    assert z.shape == (5, 64)
    plain = eval_batches(data, "val", 5)[0]  # not prefetched: the model loads the images itself
    assert not plain.inputs and torch.equal(model.inputs(data, plain)[0], batches[0].inputs[0])
    assert torch.equal(model.encode(data, plain), z)


@needs_torchvision
def test_resnet_backbone_and_missing_pretrained_weights(tmp_path, monkeypatch):
    fake_waterbirds(tmp_path)
    data = build_dataset("waterbirds", options("waterbirds", encoder="resnet18"), str(tmp_path))
    model = GroupModel(data)
    assert isinstance(model.encoders[0][0], ResNet)
    batch = next(iter(prefetched(data, eval_batches(data, "train", 4))))
    assert model(data, batch).shape == (4, 2)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BenchError, match="pretrained resnet18 weights not found at .*hub/checkpoints"):
        ResNet("resnet18", 8, pretrained=True)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: (root / "metadata.csv").unlink(), "file metadata.csv not found in"),
        (lambda root: (root / "metadata.csv").write_text("img_id,img_filename,split\n1,a.jpg,0\n"), "missing column"),
        (lambda root: (root / "001.Bird/bird_1.jpg").unlink(), "missing image file"),
        (
            lambda root: (root / "metadata.csv").write_text(
                (root / "metadata.csv").read_text().replace(",0,0,0,", ",7,0,0,", 1)
            ),
            "column y has value 7",
        ),
    ],
)
@needs_torchvision
def test_waterbirds_bad_files_are_one_clear_error(tmp_path, damage, message):
    fake_waterbirds(tmp_path)
    damage(tmp_path)
    with pytest.raises(BenchError, match=message):
        build_dataset("waterbirds", options("waterbirds", image_size=17), str(tmp_path))  # 17: not cached


def test_celeba_bad_files(tmp_path):
    fake_celeba(tmp_path)
    with pytest.raises(BenchError, match="missing column.*Bald"):
        build_dataset("celeba", options("celeba", target="Bald"), str(tmp_path))
    (tmp_path / "list_eval_partition.csv").unlink()
    with pytest.raises(BenchError, match="missing file list_eval_partition.csv or list_eval_partition.txt"):
        build_dataset("celeba", options("celeba", image_size=18), str(tmp_path))


@needs_torchvision
def test_waterbirds_quick_run_end_to_end_and_malformed_file_exit_2(tmp_path):
    root = tmp_path / "waterbirds"
    fake_waterbirds(root)
    out = tmp_path / "results"
    args = ["run", "--methods", "erm,groupdro", "--dataset", "waterbirds", "--data-root", str(root), "--seeds", "0"]
    sets = ["--set", "data.image_size=16", "--set", "data.encoder=cnn", "--set", "data.workers=0"]
    proc = bench(*args, "--quick", "--workers", "1", "--out", str(out), *sets)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(next(out.glob("waterbirds/groupdro/*/result.json")).read_text())
    assert result["status"] == "ok" and result["test"]["adj_acc"] is not None
    assert set(result["test"]["groups"]) == {"landbird,land", "landbird,water", "waterbird,land", "waterbird,water"}

    (root / "metadata.csv").write_text("img_id,img_filename\n")
    bad = bench_in_process(*args, "--quick", "--out", str(tmp_path / "bad"), *sets)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: malformed metadata.csv: missing column(s) y, split, place in {root}/metadata.csv"
    ]
    assert not (tmp_path / "bad").exists()
    missing = bench_in_process("run", "--methods", "erm", "--dataset", "waterbirds", "--out", str(tmp_path / "none"))
    assert missing.returncode == 2 and "give --data-root" in missing.stderr


def test_without_torchvision_an_image_dataset_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    missing = lambda name, *args: None if name == "torchvision" else find_spec(name)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", missing)
    fake_waterbirds(tmp_path)
    with pytest.raises(BenchError, match=r"^the real image datasets \(waterbirds, celeba\) needs torchvision: pip"):
        build_dataset("waterbirds", options("waterbirds"), str(tmp_path))
