"""--set parsing and validation."""

from __future__ import annotations

import pytest

from benchmark.config import TrainConfig, apply_sets, parse_value, split_sets, train_config
from benchmark.errors import BenchError


def test_parse_value_by_default_type():
    assert parse_value("k", "3", 1) == 3
    assert parse_value("k", "1e-3", 0.5) == 1e-3
    assert parse_value("k", "true", False) is True and parse_value("k", "0", True) is False
    assert parse_value("k", "sgd", "adam", ("adam", "sgd")) == "sgd"


@pytest.mark.parametrize(
    "raw, default, choices, message",
    [
        ("abc", 1.0, None, "not a float"),
        ("1.5", 1, None, "not a int"),
        ("maybe", True, None, "not a bool"),
        ("nan", 1.0, None, "NaN"),
        ("rmsprop", "adam", ("adam", "sgd"), "choose from adam, sgd"),
    ],
)
def test_parse_value_rejects(raw, default, choices, message):
    with pytest.raises(BenchError, match=message):
        parse_value("train.x", raw, default, choices)


@pytest.mark.parametrize("item", ["lr=1", "train.lr", "train.=3", "train.lr="])
def test_split_sets_rejects_malformed(item):
    with pytest.raises(BenchError, match="expected SECTION.KEY=VALUE"):
        split_sets([item])


def test_apply_sets_unknown_key_lists_known():
    with pytest.raises(
        BenchError, match="unknown setting 'groupdro.eta'; known: groupdro.step_size, groupdro.adjustment"
    ):
        apply_sets("groupdro", {"step_size": 0.01, "adjustment": 0.0}, {"groupdro.eta": "1"})


def test_train_config_layers_defaults_dataset_sets_and_epochs():
    assert train_config({}, {}).epochs == TrainConfig().epochs
    assert train_config({}, {"epochs": 7}).epochs == 7
    config = train_config({"train.epochs": "4", "train.lr": "0.01"}, {"epochs": 7})
    assert (config.epochs, config.lr) == (4, 0.01)
    assert train_config({"train.epochs": "4"}, {}, epochs=2).epochs == 2
    with pytest.raises(BenchError, match="train.batch_size must be >= 1"):
        train_config({"train.batch_size": "0"}, {})
