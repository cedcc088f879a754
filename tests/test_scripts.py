"""Scripts under scripts/: default_suite.py (a timed sweep: per-run rows and a total row with the tree's peak
RSS), attainable.py (each group's best val accuracy over a run's curve) and tuning_bias.py (the tuning seed against
the winner's other seeds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "default_suite.py"


def test_suite_script_writes_runs_and_total(tmp_path):
    csv = tmp_path / "suite.csv"
    shrink = ["--methods", "erm", "--seeds", "0", "--epochs", "1", "--set", "data.n_mnist1d=600", "--workers", "1"]
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "results"), "--csv", str(csv), "--", *shrink]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pd.read_csv(csv)
    assert list(table["method"]) == ["erm", "total"]
    erm, total = table.iloc[0], table.iloc[1]
    assert erm["seed"] == 0 and erm["steps_per_s"] > 0 and 0 <= erm["test_wga"] <= 100
    assert total["wall_s"] >= erm["wall_s"] > 0
    assert total["peak_rss_mb"] > 100, "the sampled tree includes the sweep's Python process"
    assert "peak RSS of the process tree" in proc.stdout
    assert 0 < total["efficiency"] < 1 and total["train_s"] == erm["train_s"]
    assert "efficiency (training time / wall × workers)" in proc.stdout and "startup" in proc.stdout


def test_the_sweeps_worker_time_splits_into_training_setup_evaluation_and_outside():
    """Two workers over 10 s: worker 1 runs A (1-5 s) then C (5.5-9 s), worker 2 runs B (2-7 s); the trainer
    takes 3 s of each run, 2 s of it training and 0.5 s stage setup."""
    sys.path.insert(0, str(SCRIPT.parent))
    from default_suite import efficiency

    runs = [{"train_time_s": 2.0, "wall_time_s": 3.0, "stages": [{"setup_time_s": 0.5}]}] * 3
    spans = [(1.0, 5.0), (2.0, 7.0), (5.5, 9.0)]
    shares = efficiency(runs, spans, start=0.0, end=10.0, workers=2)
    expected = {
        "efficiency": 0.3,
        "training": 0.3,
        "stage setup": 0.075,
        "evaluation and build": 0.075,
        "run files and dataset": 0.175,
        "startup": 0.15,
        "idle at the end": 0.2,
        "between runs": 0.025,
    }
    assert shares == pytest.approx(expected)
    assert list(shares) == list(expected)


def test_the_suites_parallelism_is_two_workers_unless_the_extra_arguments_say():
    sys.path.insert(0, str(SCRIPT.parent))
    from default_suite import COMMAND, suite_arguments

    assert suite_arguments([]) == [*COMMAND, "--workers", "2"]
    assert suite_arguments(["--workers", "1"]) == [*COMMAND, "--workers", "1"]
    per_device = ["--device", "cuda", "--workers-per-device", "4"]
    assert suite_arguments(per_device) == [*COMMAND, *per_device]


def test_attainable_takes_each_groups_best_val_accuracy_over_the_curve(tmp_path):
    """scripts/attainable.py: per group the maximum over evaluations (at different epochs), min / mean over
    seeds, from log.jsonl."""
    import json

    curves = {"a1": [(50.0, 90.0), (80.0, 70.0)], "b2": [(60.0, 95.0), (40.0, None)], "c3": [(10.0, 10.0)]}
    configs = {"a1": "winner", "b2": "winner", "c3": "other trial"}  # --winners: the config on the most seeds
    for run, evals in curves.items():
        log = tmp_path / "toy" / "groupdro" / run / "log.jsonl"
        log.parent.mkdir(parents=True)
        lines = [{"epoch": e, "val": {"groups": {"g0": g0, "g1": g1}}} for e, (g0, g1) in enumerate(evals, 1)]
        log.write_text("".join(json.dumps(line) + "\n" for line in lines))
        log.with_name("result.json").write_text(json.dumps({"config_id": configs[run]}))
    script = SCRIPT.with_name("attainable.py")
    command = [sys.executable, str(script), "--results", str(tmp_path), "--methods", "groupdro"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "toy groupdro (best val accuracy, min / mean over seeds): g0 10.0 / 50.0; g1 10.0 / 65.0"
    )
    winners = subprocess.run([*command, "--winners"], capture_output=True, text=True, timeout=60)
    assert winners.stdout.strip() == (
        "toy groupdro (best val accuracy, min / mean over seeds): g0 60.0 / 70.0; g1 90.0 / 92.5"
    )


def test_tuning_bias_compares_the_tuning_seed_with_the_winners_other_seeds(tmp_path):
    """scripts/tuning_bias.py over two methods of the committed tuned reference: the leaderboard's winner (trial 5
    for ERM) on its tuning seed (0) against its other seeds; --held-out reports the winners' other seeds alone."""
    import json
    import shutil
    from statistics import mean

    committed = SCRIPT.parents[1] / "reports" / "tuned" / "runs" / "digits-lt"
    for method in ("erm", "dro-lt"):
        shutil.copytree(committed / method, tmp_path / "runs" / "digits-lt" / method)
    script = SCRIPT.with_name("tuning_bias.py")
    command = [sys.executable, str(script), "--results", str(tmp_path / "runs"), "--held-out", str(tmp_path / "out")]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/erm/*/result.json")]
    assert len(results) == 19, "10 trials on seed 0, the winner on seeds 1-9"
    winner = {r["seed"]: r["test"]["wga"] for r in results if r["trial"] == 5}
    assert sorted(winner) == list(range(10))
    rest = mean(winner[seed] for seed in range(1, 10))
    rank = 1 + sum(wga > winner[0] for wga in winner.values())
    row = f"| digits-lt | erm | {winner[0]:.1f} | {rest:.1f} | {winner[0] - rest:+.1f} | {rank} |"
    assert row in proc.stdout.splitlines()
    board = pd.read_csv(tmp_path / "out" / "digits-lt" / "leaderboard.csv").set_index("method")
    assert board.loc["erm", "n_seeds"] == 9 and board.loc["erm", "wga_mean"] == pytest.approx(rest, abs=1e-3)
    assert board.loc["erm", "trials"] == 1, "only the winner's runs on the held-out seeds"
    missing = subprocess.run([*command[:2], "--results", str(tmp_path / "none")], capture_output=True, text=True)
    assert (missing.returncode, missing.stderr.strip()) == (2, f"no finished runs under {tmp_path / 'none'}")


def test_power_says_so_in_one_line_when_the_results_folder_is_missing(tmp_path):
    command = [sys.executable, str(SCRIPT.with_name("power.py")), "--results", str(tmp_path / "none")]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert (proc.returncode, proc.stderr.strip()) == (2, f"results folder not found: {tmp_path / 'none'}")
