"""jtt: stage split, error set, upsampling, and the stage facts it records."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import make_info

from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.data.batches import ShuffleSampler
from benchmark.methods.jtt import (
    JTT,
    RepeatSampler,
    error_set,
    error_set_facts,
    identification_epochs,
    minority_samples,
)
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train
from benchmark.training.setup import seeded_model


@pytest.mark.parametrize(
    "epochs, fraction, expected", [(15, 0.25, 4), (4, 0.25, 1), (2, 0.25, 1), (3, 0.5, 2), (10, 0.9, 9)]
)
def test_identification_epochs(epochs, fraction, expected):
    assert identification_epochs(epochs, fraction) == expected


def test_upweight_one_draws_exactly_what_shuffling_draws(toy):
    train_idx = toy.indices("train").numpy()
    repeat = RepeatSampler(toy, train_idx, 8, repeats=np.ones(len(toy.y), dtype=np.int64))
    shuffle = ShuffleSampler(toy, train_idx, 8)
    a, b = repeat.epoch(np.random.default_rng(3)), shuffle.epoch(np.random.default_rng(3))
    assert len(a) == len(b) and all(torch.equal(x.idx, y.idx) for x, y in zip(a, b))


def test_repeat_sampler_draws_each_sample_its_repeats(toy):
    train_idx = toy.indices("train").numpy()
    repeats = np.ones(len(toy.y), dtype=np.int64)
    repeats[train_idx[:5]] = 20
    sampler = RepeatSampler(toy, train_idx, 8, repeats=repeats)
    drawn = torch.cat([b.idx for b in sampler.epoch(np.random.default_rng(0))]).numpy()
    assert len(drawn) == len(train_idx) + 19 * 5  # n + (λ_up − 1)|E|
    assert np.array_equal(
        np.bincount(drawn, minlength=len(toy.y)), np.where(np.isin(np.arange(len(toy.y)), train_idx), repeats, 0)
    )


def test_error_set_is_the_eval_mode_training_mistakes(toy):
    method = JTT(seeded_model(toy, 0), make_info(toy, epochs=4))
    errors = error_set(method, toy)
    method.model.eval()
    with torch.no_grad():
        train = toy.indices("train")
        expected = torch.zeros(len(toy.y), dtype=torch.bool)
        for i in train.tolist():  # one sample at a time, an independent reference
            s, r = toy.space[i].item(), toy.row[i].item()
            logits = method.model.head(method.model.encoders[s](toy.spaces[s].x[r : r + 1]))
            expected[i] = logits.argmax(1).item() != toy.y[i].item()
    assert np.array_equal(errors, expected.numpy())
    assert not errors[toy.indices("val").numpy()].any()


def test_error_set_facts_precision_and_recall(toy):
    toy = dataclasses.replace(toy, minority=(1, 2))  # toy's groups are feature spaces: minority declared
    assert minority_samples(toy).tolist() == ((toy.split_cpu == 0) & (toy.g_cpu > 0)).tolist()
    errors = np.zeros(len(toy.y), dtype=bool)
    train = toy.split_cpu == 0
    minority_train = np.flatnonzero(train & (toy.g_cpu > 0))
    majority_train = np.flatnonzero(train & (toy.g_cpu == 0))
    errors[minority_train[:6]] = True
    errors[majority_train[:2]] = True
    facts = error_set_facts(errors, toy)
    assert facts == {
        "minority_groups": toy.group_names[1:],
        "error_set_size": 8,
        "error_set_groups": {toy.group_names[0]: 2, toy.group_names[1]: 6, toy.group_names[2]: 0},
        "error_set_precision": 6 / 8,
        "error_set_recall": 6 / 18,
    }


@pytest.fixture
def samplers(monkeypatch) -> list:
    """The ``repeats`` of every RepeatSampler built while the test runs, in order."""
    built = []
    original = RepeatSampler.__init__

    def spy(self, data, indices, batch_size, repeats):
        built.append(repeats)
        original(self, data, indices, batch_size, repeats)

    monkeypatch.setattr(RepeatSampler, "__init__", spy)
    return built


def test_jtt_trains_two_stages_and_upweights_the_errors(toy, samplers):
    spec = RunSpec("toy", {}, "jtt", {"upweight": 5}, 0, TrainConfig(epochs=3, batch_size=8))
    records = []
    result = train(spec, toy, records.append)
    assert [s["name"] for s in result["stages"]] == ["identify", "upweighted"]
    assert [s["epochs"] for s in result["stages"]] == [1, 2]
    assert [r["stage"] for r in records] == ["identify", "upweighted", "upweighted"]
    assert [r["epoch"] for r in result["history"]] == [2, 3], "selection only among the final stage's epochs"
    (repeats,) = samplers
    assert set(np.unique(repeats)) <= {1, 5}
    assert result["stages"][1]["error_set_size"] == int((repeats == 5).sum())
    steps_stage2 = records[-1]["step"] - records[0]["step"]
    assert steps_stage2 == result["stages"][1]["steps"] == 2 * -(-42 // 8)  # ERM's epochs: no extra steps


def test_jtt_oracle_upweights_the_minority_groups_for_the_whole_budget(toy, samplers):
    toy = dataclasses.replace(toy, minority=(1, 2))  # toy's groups are feature spaces: minority declared
    spec = RunSpec("toy", {}, "jtt", {"upweight": 5, "oracle": True}, 0, TrainConfig(epochs=3, batch_size=8))
    result = train(spec, toy)
    (stage,) = result["stages"]
    assert (stage["name"], stage["epochs"], stage["partition"]) == ("upweighted", 3, "oracle")
    assert stage["error_set_precision"] == stage["error_set_recall"] == 1.0
    (repeats,) = samplers
    minority = (toy.split_cpu == 0) & (toy.g_cpu != 0)
    assert repeats.tolist() == np.where(minority, 5, 1).tolist()
    assert result["labels"] == "training groups"


def test_jtt_rejects_bad_hparams_and_tiny_budgets(toy):
    with pytest.raises(BenchError, match="jtt.upweight: 0"):
        METHODS.get("jtt").check_hparams({"upweight": 0, "id_fraction": 0.25})
    with pytest.raises(BenchError, match="id_fraction: 1.0 .must be in"):
        METHODS.get("jtt").check_hparams({"upweight": 5, "id_fraction": 1.0})
    with pytest.raises(ValueError, match="cannot split 1 epochs"):
        train(RunSpec("toy", {}, "jtt", {}, 0, TrainConfig(epochs=1, batch_size=8)), toy)
