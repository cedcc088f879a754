"""dfr (docs/methods.md, "dfr"): ERM, then the head refit on group-balanced validation data; the selection reads
only predictions of a head fit without the samples it scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_HETERO, bench_in_process, toy_dataset, vector_dataset

from benchmark.core.registry import METHODS
from benchmark.data.core import GroupDataset
from benchmark.methods.dfr import C_GRID, Logistic, halves
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train
from benchmark.training.evaluation import prediction_metrics


def separable_dataset(n: int = 240, dim: int = 4) -> GroupDataset:
    """One vector space whose two classes lie far apart along the first axis; two attributes make four groups."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 2
    a = torch.arange(n) // 2 % 2
    x = torch.randn(n, dim, generator=gen)
    x[:, 0] += 8 * (2 * y - 1)
    split = torch.randint(0, 3, (n,), generator=gen)  # about a third each in train, val and test
    groups = ["c0,a0", "c0,a1", "c1,a0", "c1,a1"]
    return vector_dataset("separable", x, y, a, 2 * y + a, split, ["c0", "c1"], ["a0", "a1"], groups)


def test_halves_are_disjoint_stratified_and_seeded():
    labels = np.repeat([0, 1, 2], [10, 7, 4])
    index = np.arange(len(labels))
    first, second = halves(labels, index, torch.Generator().manual_seed(0))
    assert np.intersect1d(first, second).size == 0 and np.union1d(first, second).tolist() == index.tolist()
    assert np.bincount(labels[first]).tolist() == [5, 3, 2]
    again = halves(labels, index, torch.Generator().manual_seed(0))[0]
    other = halves(labels, index, torch.Generator().manual_seed(1))[0]
    assert again.tolist() == first.tolist() and other.tolist() != first.tolist()


@pytest.mark.parametrize("classes", [2, 3])
def test_the_logistic_head_recovers_linearly_separable_classes(classes):
    rng = np.random.default_rng(0)
    y = np.arange(300) % classes
    x = rng.normal(size=(300, 5))
    x[np.arange(300), y] += 10  # each class far along its own axis
    fitted = Logistic.fit(x, y, C_GRID[0], seed=0, num_classes=classes + 1)  # the last class never seen
    assert (fitted.predict(x) == y).all() and np.isnan(fitted.bias[-1]) and not np.isnan(fitted.bias[:-1]).any()
    mean = Logistic.average([fitted, Logistic.fit(x[:150], y[:150], C_GRID[0], seed=0, num_classes=classes + 1)])
    assert np.isnan(mean.bias[-1]) and (mean.predict(x) == y).all()
    if classes == 3:  # a fit that did not see class 0: the class keeps the other fit's score
        partial = Logistic.fit(x[y != 0], y[y != 0], C_GRID[0], seed=0, num_classes=classes + 1)
        assert Logistic.average([fitted, partial]).bias[0] == fitted.bias[0]


def test_dfr_refits_the_head_and_selects_on_held_out_predictions_only():
    data = separable_dataset()
    records = []
    result = train(RunSpec("separable", {}, "dfr", {"refits": 3}, 0, TrainConfig(epochs=2, batch_size=8)), data,
                   records.append)  # fmt: skip
    stages = {stage["name"]: stage for stage in result["stages"]}
    assert [s["name"] for s in result["stages"]] == ["erm", "refit"] and stages["refit"]["steps"] == 0
    assert result["steps"] == sum(s["steps"] for s in result["stages"]), "the refit takes no optimizer step"
    assert [r["stage"] for r in records] == ["erm", "erm", "refit"] and len(result["history"]) == 1
    refit = records[-1]
    assert refit["test"]["acc"] == 100.0 and refit["val_all"]["acc"] == 100.0, "separable classes are recovered"
    val_counts = np.bincount(data.g_cpu[data.indices_cpu("val")])
    assert stages["refit"]["C"] in C_GRID and stages["refit"]["held_out"] == (val_counts - val_counts // 2).sum()
    assert result["history"][0]["val"] == refit["val"], "the run selects on the held-out half's metrics"


def test_the_selection_metrics_are_those_of_the_held_out_half(monkeypatch):
    """The refit evaluation's val metrics are the metrics of the predictions on B of the head fit on A (never of the
    final head, which saw B): the engine computes them from what ``refit`` returns."""
    import benchmark.methods.dfr as dfr

    seen = {}
    real = dfr.DFR.refit

    def spying(self, data):
        refit = real(self, data)
        seen["refit"] = refit
        return refit

    monkeypatch.setattr(dfr.DFR, "refit", spying)
    data = toy_dataset()
    records = []
    train(RunSpec("toy", {}, "dfr", {"refits": 2}, 1, TrainConfig(epochs=2, batch_size=8)), data, records.append)
    refit = seen["refit"]
    assert records[-1]["val"] == prediction_metrics(data, refit.held_out, refit.predicted)
    assert set(refit.held_out) < set(data.indices_cpu("val").tolist())
    first_half = np.setdiff1d(data.indices_cpu("val"), refit.held_out)
    counts = np.bincount(data.g_cpu[first_half])
    assert refit.facts["tuning_size"] == counts[counts > 0].min() * (counts > 0).sum(), "fit on a balanced A"


def test_dfr_reads_validation_groups_and_trains_like_erm_before_its_refit():
    cls = METHODS.get("dfr")
    assert cls.label_tier() == "validation groups" and not cls.needs_group_labels
    data = toy_dataset()
    config = TrainConfig(epochs=2, batch_size=8)
    erm, dfr = ([], [])
    train(RunSpec("toy", {}, "erm", {}, 0, config), data, erm.append)
    train(RunSpec("toy", {}, "dfr", {}, 0, config), data, dfr.append)
    assert [r["train_loss"] for r in erm] == [r["train_loss"] for r in dfr[:-1]], "stage erm is ERM step for step"


def test_dfr_through_the_cli_and_a_bad_refit_count(tmp_path):
    out = tmp_path / "results"
    args = ["--seeds", "0", *SMALL_HETERO, "--out", str(out), "--workers", "1"]
    proc = bench_in_process("run", "--methods", "erm,dfr", *args)
    assert proc.returncode == 0, proc.stderr
    board = (out / "digits-hetero" / "leaderboard.md").read_text()
    assert "| dfr | validation groups |" in board and "| erm | classes |" in board
    bad = bench_in_process("run", "--methods", "dfr", "--set", "dfr.refits=0", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: bad value for dfr.refits: 0")
    assert not (tmp_path / "bad").exists()
