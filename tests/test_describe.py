"""``bench describe`` for every registered dataset: its groups and counts per split, offline or from fake files."""

from __future__ import annotations

import pytest
from conftest import IMAGE_DATASETS, bench_in_process, needs_torchvision
from test_data_adult import write_adult
from test_data_digits_full import write_all
from test_data_embeddings import save
from test_data_real_images import fake_celeba, fake_waterbirds
from test_data_table import frame

from benchmark.core.registry import DATASETS
from benchmark.data import build_dataset
from benchmark.sweeps.plan import dataset_options


def write_embeddings(root):
    save(root)


def write_table(root):
    frame().to_csv(root / "people.csv", index=False)


FAKE_ROOTS = {
    "waterbirds": fake_waterbirds,
    "celeba": fake_celeba,
    "adult": write_adult,
    "digits-hetero-full": write_all,
    "table": write_table,
    "embeddings": write_embeddings,
}
# datasets whose --data-root is one file of the fake folder
ROOT_FILES = {"table": "people.csv", "embeddings": "feats.npz"}
SMALL = {
    "digits-hetero": ["data.n_mnist1d=600"],
    "digits-hetero-spurious": ["data.n_mnist1d=600"],
    "waterbirds": ["data.image_size=16", "data.encoder=cnn"],
    "celeba": ["data.image_size=16", "data.encoder=cnn"],
    "table": ["data.target=label", "data.attributes=sex"],
}


def test_every_builtin_dataset_is_described_here():
    assert sorted(DATASETS.names()) == sorted(
        [
            "adult",
            "celeba",
            "celeba-style",
            "digits-hetero",
            "digits-hetero-full",
            "digits-hetero-spurious",
            "digits-lt",
            "embeddings",
            "table",
            "waterbirds",
            "waterbirds-style",
        ]
    )


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs_torchvision) if n in IMAGE_DATASETS else n for n in sorted(DATASETS.names())]
)
def test_describe_prints_groups_and_counts(name, tmp_path):
    args = ["describe", name]
    root = None
    if name in FAKE_ROOTS:
        (tmp_path / "data").mkdir()
        FAKE_ROOTS[name](tmp_path / "data")
        root = str(tmp_path / "data" / ROOT_FILES.get(name, ""))
        args += ["--data-root", root]
    sets = SMALL.get(name, [])
    for item in sets:
        args += ["--set", item]
    result = bench_in_process(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    options = dataset_options(name, dict(item.split("=") for item in sets), root)
    data = build_dataset(name, options, root)
    counts = data.counts_table()
    assert data.description.split()[0] in result.stdout
    for space in data.spaces:
        assert space.name in result.stdout
    lines = result.stdout.split("samples per split × group")[1].splitlines()
    for i, group in enumerate(data.group_names):
        row = next(line for line in lines if line.split("│")[1:2] and line.split("│")[1].strip() == group)
        assert [cell.strip() for cell in row.split("│")[2:5]] == [str(counts[s][i]) for s in ("train", "val", "test")]
