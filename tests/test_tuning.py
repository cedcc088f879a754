"""Two-phase tuning (``--tune-seeds``): every trial on the tuning seeds only, then each method's winner on every
seed; and selection without validation group labels (``--select val-wca``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import SMALL_HETERO, bench_in_process

import benchmark.sweeps.sweep as sweep_module
from benchmark.api import leaderboard, sweep
from benchmark.core.errors import BenchError
from benchmark.core.selection import select_epoch, selection_score
from benchmark.report.frames import dataset_frames
from benchmark.report.rules import seeds_note
from benchmark.report.tuning import write_tuning
from benchmark.sweeps.sweep import Interrupted

# one pytest-xdist worker takes the whole module, so the module-scoped `tuned` is built once
pytestmark = pytest.mark.xdist_group("tuned")

TUNED = dict(methods=["erm", "groupdro"], dataset="digits-hetero", trials=2, tune_seeds=[0], seeds=[0, 1], epochs=2,
             sets=["data.n_mnist1d=600"])  # fmt: skip


def stored(out) -> list[dict]:
    return [json.loads(p.read_text()) for p in out.glob("digits-hetero/*/*/result.json")]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned")
    return out, sweep(out=out, **TUNED)


def test_trials_run_on_the_tuning_seed_and_the_winner_on_every_seed(tuned):
    out, outcome = tuned
    results = stored(out)
    for method in ("erm", "groupdro"):
        mine = [r for r in results if r["method"] == method]
        assert sorted(r["trial"] for r in mine if r["seed"] == 0) == [0, 1], "every trial on the tuning seed"
        on_seed_1 = [r for r in mine if r["seed"] == 1]
        assert len(on_seed_1) == 1, "only the winner on the other seed"
        best = max(
            (r for r in mine if r["seed"] == 0),
            key=lambda r: (*selection_score(select_epoch(r["history"], "val-wga"), "val-wga"), -r["trial"]),
        )
        assert on_seed_1[0]["config_id"] == best["config_id"], "the winner is the best trial on the tuning seed"
    assert len(outcome.runs) == 6 and not outcome.failed


def test_the_leaderboard_says_which_trial_won_over_how_many_on_which_seeds(tuned):
    out, _ = tuned
    board = leaderboard(out).set_index("method")
    winners = {r["method"]: r["trial"] for r in stored(out) if r["seed"] == 1}
    for method in ("erm", "groupdro"):
        assert board.loc[method, "trials"] == 2 and board.loc[method, "tuned_on"] == "0"
        assert board.loc[method, "n_seeds"] == 2 and board.loc[method, "trial"] == winners[method]


def test_a_tuned_sweep_resumes_without_training_again(tuned):
    out, _ = tuned
    again = sweep(out=out, **TUNED)
    assert again.attempted == set() and len(again.runs) == 6


@pytest.mark.parametrize("phase", [1, 2])
def test_an_interrupted_tuned_sweep_counts_the_runs_of_both_phases(tuned, monkeypatch, phase):
    out, _ = tuned
    real, calls = sweep_module.run_sweep, []

    def stopping(runs, *args, **kwargs):
        calls.append(len(runs))
        if len(calls) == phase:  # this phase stops after one of its runs
            raise Interrupted(2, 1, len(runs))
        return real(runs, *args, **kwargs)

    monkeypatch.setattr(sweep_module, "run_sweep", stopping)
    with pytest.raises(Interrupted) as stop:
        sweep(out=out, **TUNED)
    # 2 methods × 2 trials on seed 0, then each method's winner on seed 1: 6 runs in all
    assert (stop.value.finished, stop.value.total) == ((1, 6) if phase == 1 else (5, 6))


def test_tune_seeds_through_the_cli_and_bad_input(tmp_path):
    proc = bench_in_process(
        "run",
        "--methods",
        "erm",
        "--trials",
        "2",
        "--tune-seeds",
        "5",
        "--seeds",
        "0",
        *SMALL_HETERO,
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    results = stored(tmp_path)
    assert sorted(r["seed"] for r in results) == [0, 5, 5], "two trials on seed 5, the winner on seed 0"
    winner = next(r for r in results if r["seed"] == 0)
    assert winner["config_id"] in {r["config_id"] for r in results if r["seed"] == 5}
    written = pd.read_csv(tmp_path / "digits-hetero" / "leaderboard.csv")
    assert written.loc[0, "trials"] == 2 and str(written.loc[0, "tuned_on"]) == "5" and written.loc[0, "n_seeds"] == 2
    bad = bench_in_process("run", "--methods", "erm", "--tune-seeds", "x", "--out", str(tmp_path))
    assert bad.returncode == 2 and "bad --tune-seeds 'x'" in bad.stderr


def test_val_wca_selects_by_the_worst_class_and_old_runs_say_why_not(tuned):
    out, _ = tuned
    results = stored(out)
    record = select_epoch(results[0]["history"], "val-wca")
    scores = [(h["val"]["wca"], h["val"]["acc"]) for h in results[0]["history"]]
    assert (record["val"]["wca"], record["val"]["acc"]) == max(scores)
    board = leaderboard(out, select="val-wca")
    assert set(board["select"]) == {"val-wca"}
    old = {
        **results[0],
        "history": [
            {**h, "val": {k: v for k, v in h["val"].items() if k not in ("wca", "classes")}}
            for h in results[0]["history"]
        ],
    }
    with pytest.raises(BenchError, match="--select val-wca: these runs do not record val wca"):
        select_epoch(old["history"], "val-wca")


def test_tuning_table_compares_each_methods_defaults_with_its_winner_on_the_tuning_seed(tuned, tmp_path):
    out, _ = tuned
    write_tuning(dataset_frames(stored(out)), tmp_path, "val-wga", ("csv", "md"))
    table = pd.read_csv(tmp_path / "digits-hetero" / "tuning.csv").set_index("method")
    for method in ("erm", "groupdro"):
        mine = [r for r in stored(out) if r["method"] == method and r["seed"] == 0]
        by_trial = {r["trial"]: select_epoch(r["history"], "val-wga") for r in mine}
        row = table.loc[method]
        assert row["trials"] == 2 and str(row["tuned_on"]) == "0"
        assert row["defaults_wga"] == pytest.approx(by_trial[0]["test"]["wga"], abs=1e-4)
        assert row["tuned_wga"] == pytest.approx(by_trial[row["trial"]]["test"]["wga"], abs=1e-4)
        assert row["tuned_score"] >= row["defaults_score"] and row["tuned_score"] == pytest.approx(
            max(b["val"]["wga"] for b in by_trial.values()), abs=1e-4
        )
    text = (tmp_path / "digits-hetero" / "tuning.md").read_text()
    assert "| erm | 2 | 0 |" in text and "val-wga: defaults → tuned" in text


def test_no_tuning_table_without_a_search(tuned, tmp_path):
    out, _ = tuned
    defaults_only = dataset_frames([r for r in stored(out) if r["trial"] == 0])
    write_tuning(defaults_only, tmp_path / "out", "val-wga", ("csv", "md"))
    assert not (tmp_path / "out").exists()


def test_selection_cells_name_the_seeds_of_a_trial_only_another_rule_ran_on_every_seed():
    assert seeds_note(3, 3) == "" and seeds_note(1, 3) == ", 1 seed" and seeds_note(2, 3) == ", 2 seeds"
