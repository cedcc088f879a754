"""waterbirds-style and celeba-style: group counts, eval policies, disjoint sources, rendering, a quick ERM gap."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS
from benchmark.core.selection import selected
from benchmark.data import build_dataset
from benchmark.data.celeba_style import CELEBA_TRAIN
from benchmark.data.sources import sklearn_digits
from benchmark.data.waterbirds_style import WATERBIRDS_TRAIN
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train

NAMES = ("waterbirds-style", "celeba-style")
WATERBIRDS = np.array(WATERBIRDS_TRAIN)
CELEBA = np.array(CELEBA_TRAIN)


def options(name: str, **overrides) -> dict:
    return {**DATASETS.get(name).option_defaults(), **overrides}


def build(name: str, **overrides):
    """Check the options and build without the process cache, so that every call really constructs the dataset."""
    cls = DATASETS.get(name)
    return cls().build(cls.check_options(options(name, **overrides)), None)


@pytest.fixture(scope="module")
def datasets() -> dict:
    return {name: build_dataset(name, options(name)) for name in NAMES}


def proportions(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum()


def test_waterbirds_train_counts_follow_waterbirds(datasets):
    assert datasets["waterbirds-style"].counts_table()["train"] == WATERBIRDS.tolist()  # default scale 1.0
    for scale in (0.5, 0.25):
        counts = DATASETS.get("waterbirds-style")().train_counts(options("waterbirds-style", scale=scale))
        assert counts.sum() == round(WATERBIRDS.sum() * scale)
        assert np.abs(proportions(counts) - proportions(WATERBIRDS)).max() < 0.01, counts


def test_celeba_counts_follow_celeba_in_every_split():
    table = build("celeba-style", eval_group_floor=0).counts_table()
    assert sum(table["train"]) == options("celeba-style")["train_size"]
    for split in ("train", "val", "test"):
        assert np.abs(proportions(table[split]) - proportions(CELEBA)).max() < 0.005, (split, table[split])
    assert min(table["test"]) >= 30, "the blond-male test group must be large enough for a worst-group accuracy"
    counts = DATASETS.get("celeba-style")().train_counts(options("celeba-style", train_size=2500))
    assert counts.sum() == 2500 and np.abs(proportions(counts) - proportions(CELEBA)).max() < 0.005


def test_waterbirds_eval_splits_are_balanced_within_class(datasets):
    data = datasets["waterbirds-style"]
    for split in ("val", "test"):
        counts = np.array(data.counts_table()[split]).reshape(2, 2)  # rows y, columns a
        assert counts.sum() == options("waterbirds-style")[f"{split}_size"]
        assert np.all(np.abs(counts[:, 0] - counts[:, 1]) <= 1), counts
        class_share = counts.sum(1) / counts.sum()
        assert np.abs(class_share - proportions(WATERBIRDS.reshape(2, 2).sum(1))).max() < 0.01


def test_minority_groups_are_the_bias_conflicting_cells(datasets):
    water = datasets["waterbirds-style"]
    assert water.minority_names == ["landbird,water", "waterbird,land"]
    assert sum(c for c, m in zip(water.counts_table()["train"], water.minority_mask) if m) == 184 + 56
    assert datasets["celeba-style"].minority_names == ["dark,female", "blond,male"]


def distinct_sources(plan, split: int, g: int) -> int:
    """How many different source digits group ``g`` of ``split`` is rendered from."""
    return len(np.unique(plan.source[(plan.split == split) & (2 * plan.y + plan.a == g)]))


def test_waterbirds_eval_groups_have_200_independent_source_images():
    # augmented renderings of one source image are not independent samples: count distinct sources per group
    plan = DATASETS.get("waterbirds-style")().plan(options("waterbirds-style"))
    for split in (1, 2):
        for g in range(4):
            assert distinct_sources(plan, split, g) >= 200, (split, g)


def test_celeba_eval_groups_hold_as_many_independent_sources_as_the_split_has():
    """The floor raises blond-male from CelebA's 0.85% (17 val / 34 test) to one sample per blond source digit of
    the split (~135), each drawn once; the other groups keep their natural counts, which are larger."""
    builder = DATASETS.get("celeba-style")()
    plan, natural = builder.plan(options("celeba-style")), builder.plan(options("celeba-style", eval_group_floor=0))
    _, digits = sklearn_digits()
    blond = builder.classify(digits)
    for split in (1, 2):
        in_split = np.isin(np.arange(len(digits)), plan.source[plan.split == split])
        blond_sources = int((blond.astype(bool) & in_split).sum())
        assert 120 <= blond_sources < 200
        male = (plan.split == split) & (plan.y == 1) & (plan.a == 1)
        assert male.sum() == distinct_sources(plan, split, 3) == blond_sources, "every blond source once"
        for g in range(3):
            members = (plan.split == split) & (2 * plan.y + plan.a == g)
            assert members.sum() == ((natural.split == split) & (2 * natural.y + natural.a == g)).sum()
            assert distinct_sources(plan, split, g) >= min(200, blond_sources)


@pytest.mark.parametrize("name", NAMES)
def test_source_images_are_disjoint_across_splits(name):
    builder = DATASETS.get(name)()
    plan = builder.plan(options(name))
    _, digits = sklearn_digits()
    sources = [set(plan.source[plan.split == s].tolist()) for s in range(3)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert sum(len(s) for s in sources) > 0.95 * len(digits), "nearly every source image is used somewhere"
    assert np.array_equal(plan.y, builder.classify(digits[plan.source])), "each sample's class is its digit's"
    data = build(name)
    for field, planned in (("y", "y"), ("a", "a"), ("split_code", "split")):
        assert np.array_equal(getattr(data, field).numpy(), getattr(plan, planned))
    # a source image reused within a split is rendered differently each time
    train = np.flatnonzero(plan.split == 0)
    first, second = train[np.flatnonzero(plan.source[train] == plan.source[train[0]])[:2]]
    assert first != second and not torch.equal(data.spaces[0].x[first], data.spaces[0].x[second])


@pytest.mark.parametrize("name", NAMES)
def test_images_labels_and_names(datasets, name):
    data = datasets[name]
    x = data.spaces[0].x
    assert len(data.spaces) == 1 and data.spaces[0].kind == "image"
    assert x.shape == (len(data.y), 3, 16, 16) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert torch.equal(data.row, torch.arange(len(data.y))) and torch.all(data.space == 0)
    assert torch.equal(data.g, 2 * data.y + data.a)
    assert len(data.group_names) == 4 and len(set(data.group_names)) == 4
    assert data.group_names[3] == f"{data.class_names[1]},{data.attr_names[1]}"
    data.validate()


@pytest.mark.parametrize("name", NAMES)
def test_attribute_is_visible_in_the_mean_colour(datasets, name):
    """The spurious attribute is a colour shift: a nearest-mean rule on per-image mean RGB recovers it."""
    data = datasets[name]
    colour = data.spaces[0].x.mean((2, 3))
    train, test = data.split_code == 0, data.split_code == 2
    centres = torch.stack([colour[train & (data.a == a)].mean(0) for a in (0, 1)])
    predicted = torch.cdist(colour[test], centres).argmin(1)
    assert (predicted == data.a[test]).float().mean() > 0.97
    # ... with per-sample variation: the mean colour varies within every group
    assert all(colour[data.g == g].std(0).min() > 0.01 for g in range(4))


@pytest.mark.parametrize("name", NAMES)
def test_construction_is_deterministic_by_seed(name):
    np_state, py_state, torch_state = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    a, b, c = build(name, seed=3), build(name, seed=3), build(name, seed=4)
    assert (
        torch.equal(a.spaces[0].x, b.spaces[0].x) and torch.equal(a.split_code, b.split_code) and torch.equal(a.y, b.y)
    )
    assert not torch.equal(a.spaces[0].x, c.spaces[0].x)
    assert not np.array_equal(
        DATASETS.get(name)().plan(options(name, seed=3)).source, DATASETS.get(name)().plan(options(name, seed=4)).source
    )
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_adj_acc_weights_are_training_proportions(datasets):
    data = datasets["waterbirds-style"]
    assert set(data.summaries) == {"adj_acc"}
    assert np.allclose(data.summaries["adj_acc"], proportions(data.counts_table()["train"]))
    assert np.allclose(data.summaries["adj_acc"], proportions(WATERBIRDS))
    assert datasets["celeba-style"].summaries == {}


@pytest.mark.parametrize(
    "name, bad",
    [
        ("waterbirds-style", {"scale": 0.0}),
        ("waterbirds-style", {"test_size": 100}),  # 12 waterbirds per background in test
        ("celeba-style", {"test_size": 3000, "eval_group_floor": 0}),  # 26 blond males in test
        ("celeba-style", {"eval_group_floor": -1}),
        ("celeba-style", {"train_size": 20}),  # no blond male left to train on
    ],
)
def test_options_that_starve_a_group_are_rejected(name, bad):
    with pytest.raises(BenchError, match=f"dataset {name}: options give group counts|bad value for data"):
        build(name, **bad)


@pytest.mark.parametrize(
    "name, small",
    [
        ("waterbirds-style", {"scale": 0.3, "val_size": 400, "test_size": 800}),
        ("celeba-style", {"train_size": 1500, "val_size": 600, "test_size": 3600}),
    ],
)
def test_erm_learns_the_shortcut_first(name, small):
    """A short ERM run leans on the attribute (or the class prior): its worst group trails its average by >= 10
    points; on waterbirds-style the groups where background agrees with the class beat those where it does not."""
    opts = options(name, **small)
    data = build_dataset(name, opts)
    test = selected(train(RunSpec(name, opts, "erm", {}, 0, TrainConfig(epochs=2)), data), "val-wga")["test"]
    assert test["acc"] - test["wga"] >= 10, test
    if name == "waterbirds-style":
        acc = [test["groups"][g] for g in data.group_names]
        assert (acc[0] + acc[3]) / 2 - (acc[1] + acc[2]) / 2 >= 20, test
