"""Group metrics in percent, with missing groups reported as missing."""

from __future__ import annotations

import pytest

from benchmark.core.metrics import class_metrics, group_metrics


def test_group_metrics_values():
    m = group_metrics([9, 1, 30], [10, 4, 40], ["a", "b", "c"])
    assert m["groups"] == pytest.approx({"a": 90.0, "b": 25.0, "c": 75.0})
    assert m["wga"] == 25.0 and m["bga"] == 90.0 and m["delta_acc"] == 65.0
    assert m["acc"] == pytest.approx(100 * 40 / 54)
    assert m["mean_group_acc"] == pytest.approx((90 + 25 + 75) / 3)


def test_absent_group_is_missing_not_zero():
    m = group_metrics([5, 0, 3], [10, 0, 3], ["a", "b", "c"])
    assert m["groups"]["b"] is None
    assert m["wga"] == 50.0 and m["bga"] == 100.0
    assert m["mean_group_acc"] == 75.0


def test_no_samples_at_all():
    m = group_metrics([0], [0], ["a"])
    assert m["wga"] is None and m["acc"] is None and m["groups"] == {"a": None}


def test_weighted_summaries_skip_absent_groups():
    m = group_metrics([9, 1, 0], [10, 4, 0], ["a", "b", "c"], {"adj_acc": [0.7, 0.2, 0.1], "few": [0, 1, 1]})
    assert m["adj_acc"] == pytest.approx((0.7 * 90 + 0.2 * 25) / 0.9)
    assert m["few"] == 25.0
    assert group_metrics([0], [0], ["a"], {"many": [1]})["many"] is None


def test_worst_class_accuracy_skips_absent_classes():
    got = class_metrics([3, 0, 9], [4, 0, 10], ["zero", "one", "two"])
    assert got == {"wca": 75.0, "classes": {"zero": 75.0, "one": None, "two": 90.0}}
    assert class_metrics([0], [0], ["zero"]) == {"wca": None, "classes": {"zero": None}}


def test_every_evaluation_reports_each_class_and_the_worst(small_hetero):
    from conftest import small_hetero_options

    from benchmark.runs.spec import RunSpec, TrainConfig
    from benchmark.training.engine import train

    records = []
    train(
        RunSpec("digits-hetero", small_hetero_options(), "erm", {}, 0, TrainConfig(epochs=1)),
        small_hetero,
        records.append,
    )
    test = records[0]["test"]
    assert set(test["classes"]) == set(small_hetero.class_names)
    assert test["wca"] == min(test["classes"].values()) <= test["acc"]
