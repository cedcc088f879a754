"""digits-lt: the exponential training profile, balanced disjoint eval splits, Many/Medium/Few weights,
option checks, determinism, and a short end-to-end run with finite many/medium/few metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import benchmark.data.digits_lt  # noqa: F401  (registers digits-lt even before benchmark.data imports it)
from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS
from benchmark.core.selection import selected
from benchmark.data import build_dataset
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train

SMALL = {"n_max": 60, "n_eval": 10}  # a 1000-sequence pool: fast builds for the option-level tests


def options(**overrides) -> dict:
    return {**DATASETS.get("digits-lt").option_defaults(), **overrides}


def expected_profile(n_max: int, beta: float) -> list[int]:
    """The spec's formula, written out independently: round(n_max · β^(−c/9)), halves rounded up."""
    return [int(math.floor(n_max * beta ** (-c / 9) + 0.5)) for c in range(10)]


def class_counts(data, split: str) -> list[int]:
    return torch.bincount(data.y[data.indices(split)], minlength=10).tolist()


@pytest.fixture(scope="module")
def default_lt():
    return build_dataset("digits-lt", options())


@pytest.fixture(scope="module")
def beta10_lt():
    return build_dataset("digits-lt", options(imbalance=10.0))


def test_defaults_and_registration():
    builder = DATASETS.get("digits-lt")
    assert builder.option_defaults() == {"seed": 0, "imbalance": 100.0, "n_max": 500, "n_eval": 1000}
    assert builder.train_defaults == {"epochs": 15}


def test_default_profile_head_500_tail_5(default_lt):
    counts = class_counts(default_lt, "train")
    assert counts == expected_profile(500, 100.0)
    assert counts == [500, 300, 180, 108, 65, 39, 23, 14, 8, 5]
    assert default_lt.counts_table()["train"] == counts  # groups are the classes


@pytest.mark.parametrize("n_max,beta", [(60, 1.0), (60, 7.5), (37, 2.0), (200, 50.0), (100, 200.0)])
def test_training_profile_follows_the_formula(n_max, beta):
    data = DATASETS.get("digits-lt")().build(options(n_max=n_max, imbalance=beta, n_eval=3), None)
    counts = class_counts(data, "train")
    assert counts == expected_profile(n_max, beta)
    assert counts[0] == n_max and counts == sorted(counts, reverse=True)


def test_val_and_test_balanced(default_lt, beta10_lt):
    for data in (default_lt, beta10_lt):
        assert class_counts(data, "val") == [1000] * 10
        assert class_counts(data, "test") == [1000] * 10
    small = build_dataset("digits-lt", options(**SMALL))
    assert class_counts(small, "val") == class_counts(small, "test") == [10] * 10


def test_structure_single_space_and_g_equals_a_equals_y(default_lt):
    assert [(s.name, s.kind, s.shape) for s in default_lt.spaces] == [("mnist1d", "sequence", (1, 40))]
    assert torch.equal(default_lt.g, default_lt.y) and torch.equal(default_lt.a, default_lt.y)
    assert default_lt.group_names == default_lt.class_names == default_lt.attr_names == [str(c) for c in range(10)]
    assert torch.equal(default_lt.row.sort().values, torch.arange(len(default_lt.spaces[0].x)))
    assert len(default_lt.spaces[0].x) == len(default_lt.y) == 1242 + 2 * 10000
    assert torch.isfinite(default_lt.spaces[0].x).all()


def test_splits_are_disjoint_no_duplicate_sequence(default_lt, beta10_lt):
    for data in (default_lt, beta10_lt):
        x = data.spaces[0].x.flatten(1)[data.row].numpy()
        seen = {}
        for s, name in enumerate(("train", "val", "test")):
            rows = {r.tobytes() for r in x[data.split_code.numpy() == s]}
            seen[name] = rows
        assert not (seen["train"] & seen["val"]) and not (seen["train"] & seen["test"])
        assert not (seen["val"] & seen["test"])
        assert len(np.unique(x, axis=0)) == len(x), "no sequence appears twice anywhere"


def expected_buckets(train_counts: list[int]) -> dict[str, list[float]]:
    return {
        "many": [1.0 if n > 100 else 0.0 for n in train_counts],
        "medium": [1.0 if 20 <= n <= 100 else 0.0 for n in train_counts],
        "few": [1.0 if n < 20 else 0.0 for n in train_counts],
    }


def test_many_medium_few_weights_match_thresholds(default_lt, beta10_lt):
    default_counts = default_lt.group_counts("train").tolist()
    assert default_lt.summaries == expected_buckets(default_counts)
    # β = 100: 4 Many (500, 300, 180, 108), 3 Medium (65, 39, 23), 3 Few (14, 8, 5)
    assert [sum(default_lt.summaries[k]) for k in ("many", "medium", "few")] == [4, 3, 3]

    counts10 = beta10_lt.group_counts("train").tolist()
    assert counts10 == expected_profile(500, 10.0) == [500, 387, 300, 232, 180, 139, 108, 83, 65, 50]
    assert beta10_lt.summaries == expected_buckets(counts10)
    assert [sum(beta10_lt.summaries[k]) for k in ("many", "medium", "few")] == [7, 3, 0]


def test_threshold_edges_are_inclusive_for_medium():
    # n_max 100, β = 5: counts 100, 84, 70, 58, 49, 41, 34, 29, 24, 20 — both edges Medium, none Many/Few
    data = DATASETS.get("digits-lt")().build(options(n_max=100, imbalance=5.0, n_eval=2), None)
    counts = data.group_counts("train").tolist()
    assert counts[0] == 100 and counts[-1] == 20
    assert data.summaries["medium"] == [1.0] * 10
    assert data.summaries["many"] == data.summaries["few"] == [0.0] * 10
    # n_max 101, β = 101/19 puts the head just in Many and the tail just in Few
    data = DATASETS.get("digits-lt")().build(options(n_max=101, imbalance=101 / 19, n_eval=2), None)
    counts = data.group_counts("train").tolist()
    assert counts[0] == 101 and counts[-1] == 19
    assert data.summaries == expected_buckets(counts)
    assert data.summaries["many"][0] == 1.0 and data.summaries["few"][-1] == 1.0


def test_empty_bucket_is_reported_missing(beta10_lt):
    from benchmark.core.metrics import group_metrics

    metrics = group_metrics([50] * 10, [100] * 10, beta10_lt.group_names, beta10_lt.summaries)
    assert metrics["many"] == 50.0 and metrics["medium"] == 50.0
    assert metrics["few"] is None  # no class has < 20 samples at β = 10: missing, never 0 or 100


@pytest.mark.parametrize(
    "bad",
    [
        {"imbalance": 0.5},
        {"imbalance": 0.0},
        {"imbalance": -3.0},
        {"imbalance": float("nan")},
        {"imbalance": float("inf")},
        {"n_max": 0},
        {"n_max": -5},
        {"n_max": 2.5},
        {"n_eval": 0},
        {"n_max": 4, "imbalance": 100.0},  # tail rounds to 0 training samples
    ],
)
def test_bad_options_are_one_bench_error(bad):
    with pytest.raises(BenchError, match=r"data\.(imbalance|n_max|n_eval)|digits-lt"):
        build_dataset("digits-lt", options(**bad))


def test_imbalance_one_is_balanced_and_allowed():
    data = DATASETS.get("digits-lt")().build(options(imbalance=1.0, **SMALL), None)
    assert class_counts(data, "train") == [60] * 10
    assert data.summaries["medium"] == [1.0] * 10


def test_construction_is_deterministic_by_seed():
    builder = DATASETS.get("digits-lt")()
    a = builder.build(options(seed=3, **SMALL), None)
    b = builder.build(options(seed=3, **SMALL), None)
    c = builder.build(options(seed=4, **SMALL), None)
    for field in ("y", "split_code", "row", "g", "a"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    assert torch.equal(a.spaces[0].x, b.spaces[0].x)
    assert class_counts(a, "train") == class_counts(c, "train")  # same profile, different sequences
    assert not torch.equal(a.spaces[0].x, c.spaces[0].x)


def test_eval_splits_do_not_depend_on_beta_and_train_sets_nest(default_lt, beta10_lt):
    x100, x10 = default_lt.spaces[0].x.flatten(1).numpy(), beta10_lt.spaces[0].x.flatten(1).numpy()

    def rows(data, x, s):
        return {r.tobytes() for r in x[data.row[data.split_code == s].numpy()]}

    for s in (1, 2):
        assert rows(default_lt, x100, s) == rows(beta10_lt, x10, s)
    assert rows(default_lt, x100, 0) < rows(beta10_lt, x10, 0)


def test_end_to_end_training_reports_many_medium_few():
    opts = DATASETS.get("digits-lt").option_defaults()
    spec = RunSpec("digits-lt", opts, "erm", {}, 0, TrainConfig(epochs=1))
    result = selected(train(spec, build_dataset("digits-lt", opts)), "val-wga")
    for split in ("val", "test"):
        for key in ("many", "medium", "few", "wga", "acc"):
            value = result[split][key]
            assert value is not None and math.isfinite(value), (split, key, value)
            assert 0.0 <= value <= 100.0
    assert set(result["test"]["groups"]) == {str(c) for c in range(10)}
