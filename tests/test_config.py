"""--set parsing and validation."""

from __future__ import annotations

import pytest

from benchmark.core.errors import BenchError
from benchmark.core.settings import Range, apply_sets, check_setting, parse_setting, split_sets
from benchmark.runs.spec import TrainConfig, train_config


def test_parse_setting_by_default_type():
    assert parse_setting("k", "3", 1) == 3
    assert parse_setting("k", "1e-3", 0.5) == 1e-3
    assert parse_setting("k", "true", False) is True and parse_setting("k", "0", True) is False
    assert parse_setting("k", "sgd", "adam") == "sgd"


@pytest.mark.parametrize(
    "raw, default, message",
    [("abc", 1.0, "not a float"), ("1.5", 1, "not a int"), ("maybe", True, "not a bool")],
)
def test_parse_setting_rejects(raw, default, message):
    with pytest.raises(BenchError, match=message):
        parse_setting("train.x", raw, default)


@pytest.mark.parametrize(
    "value, default, choices, bound, message",
    [
        (float("nan"), 1.0, None, None, "must be a finite number"),
        (float("inf"), 1.0, None, None, "must be a finite number"),
        (-float("inf"), 1.0, None, Range(0), "must be a finite number"),
        ("rmsprop", "adam", ("adam", "sgd"), None, "choose from adam, sgd"),
        (1.5, 1, None, None, "not a int"),
        (True, 1, None, None, "not a int"),
        ("1", 1.0, None, None, "not a float"),
        (50.0, 0.9, None, Range(0, 1, high_open=True), r"must be in \[0, 1\)"),
        (1.0, 0.5, None, Range(0, 1, high_open=True), r"must be in \[0, 1\)"),
        (0.0, 0.5, None, Range(0, 1, low_open=True, high_open=True), r"must be in \(0, 1\)"),
        (0, 1, None, Range(1), "must be >= 1"),
        (0.0, 1.0, None, Range(0, low_open=True), "must be > 0"),
    ],
)
def test_check_setting_rejects(value, default, choices, bound, message):
    with pytest.raises(BenchError, match=f"bad value for sec.key: .*{message}"):
        check_setting("sec.key", value, default, choices, bound)


def test_check_setting_accepts_the_ends_of_closed_ranges_and_ints_for_floats():
    assert check_setting("k", 0.0, 0.5, None, Range(0, 1)) == 0.0
    assert check_setting("k", 1, 0.5, None, Range(0, 1)) == 1.0 and isinstance(check_setting("k", 1, 0.5), float)
    assert check_setting("k", 0.999, 0.5, None, Range(0, 1, high_open=True)) == 0.999


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
    with pytest.raises(BenchError, match="bad value for train.batch_size: 0 .must be in"):
        train_config({"train.batch_size": "0"}, {})


@pytest.mark.parametrize(
    "sets, message",
    [
        (["train.lr=inf"], "train.lr: inf .must be a finite number"),
        (["train.momentum=50"], r"train.momentum: 50.0 .must be in \[0, 1\)"),
        (["train.epochs=0"], "train.epochs: 0"),
        (["groupdro.step_size=inf"], "groupdro.step_size: inf"),
        (["groupdro.step_size=-1"], "groupdro.step_size: -1.0 .must be >= 0"),
        (["data.seed=-1"], "data.seed: -1"),
        (["data.n_eval=0"], "data.n_eval: 0"),
        (["data.rotation=inf"], "data.rotation: inf"),
        (["data.proj_noise=nan"], "data.proj_noise: nan"),
    ],
)
def test_every_section_is_checked_by_one_scheme_before_training(sets, message):
    from benchmark.sweeps.plan import plan

    with pytest.raises(BenchError, match=f"bad value for {message}"):
        plan(methods=["erm", "groupdro"], dataset="digits-hetero", seeds=[0], sets=sets)


def test_defaults_and_every_drawn_trial_pass_the_declared_settings():
    from benchmark.core.registry import DATASETS, METHODS
    from benchmark.plugins import load_plugins
    from benchmark.sweeps.plan import plan

    load_plugins(())
    for name in DATASETS.names():
        cls = DATASETS.get(name)
        assert cls.check_options(cls.option_defaults()) == cls.option_defaults(), name
    specs = plan(methods=["all"], dataset="digits-hetero", seeds=[0], trials=12)  # raises if a draw left its range
    assert {s.spec.method for s in specs} == set(METHODS.names())
    assert len({s.run_id for s in specs}) > len(METHODS.names())


def test_the_dataset_builder_path_checks_options_too():
    from benchmark.core.registry import DATASETS
    from benchmark.data import build_dataset

    options = {**DATASETS.get("digits-lt").option_defaults(), "imbalance": 0.5}
    with pytest.raises(BenchError, match=r"data.imbalance: 0.5 .must be in \[1, 1000000\]"):
        build_dataset("digits-lt", options)
