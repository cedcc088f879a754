"""Model selection on stored fake results: each rule picks the right epoch and hparam trial."""

from __future__ import annotations

import pytest

from benchmark.core.metrics import group_metrics
from benchmark.core.selection import select_epoch
from benchmark.report.files import runs_frame, write_reports


def record(epoch: int, val: list[int], test: list[int]) -> dict:
    """An evaluation of two groups of 10 samples with the given numbers correct."""
    names = ["g0", "g1"]
    return {"epoch": epoch, "val": group_metrics(val, [10, 10], names), "test": group_metrics(test, [10, 10], names)}


def stored_run(config: str, trial: int, seed: int, history: list[dict]) -> dict:
    best = history[0]
    return {
        "status": "ok",
        "dataset": "toy",
        "method": "m",
        "family_id": "fam",
        "config_id": config,
        "run_id": f"{config}-{seed}",
        "trial": trial,
        "seed": seed,
        "hparams": {"h": trial},
        "select": "val-wga",
        "val": best["val"],
        "test": best["test"],
        "history": history,
        "train_time_s": 1.0,
        "steps_per_s": 1.0,
        "peak_memory_mb": 1.0,
    }


# trial 0: val wga 60/50/70 (acc 60/75/85), test wga 90/70/50
TRIAL0 = [record(1, [6, 6], [9, 9]), record(2, [10, 5], [7, 7]), record(3, [10, 7], [5, 5])]
# trial 1: val wga 80/50/70 (acc 80/70/70), test wga 60/80/40
TRIAL1 = [record(1, [8, 8], [6, 6]), record(2, [9, 5], [8, 8]), record(3, [7, 7], [4, 4])]
RESULTS = [stored_run(f"c{t}", t, seed, h) for t, h in enumerate((TRIAL0, TRIAL1)) for seed in (0, 1)]


@pytest.mark.parametrize(
    "rule, trial, epoch, test_wga",
    [("val-wga", 1, 1, 60.0), ("val-acc", 0, 3, 50.0), ("oracle", 0, 1, 90.0)],
)
def test_each_rule_picks_its_trial_and_epoch(tmp_path, rule, trial, epoch, test_wga):
    runs = runs_frame(RESULTS, rule)
    assert set(runs.loc[runs["trial"] == trial, "selected_epoch"]) == {epoch}
    board = write_reports(RESULTS, tmp_path, select=rule)["toy"]
    row = board.iloc[0]
    assert len(board) == 1 and row["trial"] == trial and row["trials"] == 2 and row["select"] == rule
    assert row["wga_mean"] == pytest.approx(test_wga) and row["n_seeds"] == 2
    assert row["hparams"] == f'{{"h": {trial}}}'
    assert f"selection (epoch and hparam trial): {rule}" in (tmp_path / "toy" / "leaderboard.md").read_text()


def test_trials_are_compared_by_the_mean_over_seeds(tmp_path):
    lucky = [record(1, [10, 10], [1, 1])]  # one seed at val wga 100, the other at 20: mean 60 < 70
    unlucky = [record(1, [2, 2], [1, 1])]
    steady = [record(1, [7, 7], [6, 6])]
    results = [
        stored_run("c0", 0, 0, steady),
        stored_run("c0", 0, 1, steady),
        stored_run("c1", 1, 0, lucky),
        stored_run("c1", 1, 1, unlucky),
    ]
    row = write_reports(results, tmp_path)["toy"].iloc[0]
    assert row["trial"] == 0 and row["wga_mean"] == pytest.approx(60.0)


def test_epoch_ties_go_to_the_tie_break_then_the_first_epoch():
    history = [record(1, [5, 6], [0, 0]), record(2, [5, 9], [1, 1]), record(3, [5, 9], [2, 2])]
    assert select_epoch(history, "val-wga")["epoch"] == 2  # wga 50 everywhere; acc 55 < 70 = 70
    assert select_epoch(history, "val-acc")["epoch"] == 2
    assert select_epoch(history, "oracle")["epoch"] == 3


def test_a_missing_metric_never_wins():
    absent = {"epoch": 1, "val": group_metrics([0, 0], [0, 0], ["g0", "g1"]), "test": record(1, [1, 1], [1, 1])["test"]}
    assert select_epoch([absent, record(2, [1, 1], [1, 1])], "val-wga")["epoch"] == 2
