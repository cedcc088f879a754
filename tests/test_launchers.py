"""Launchers: a local process pool, Ray and submitit give the same results as one process; a killed sweep resumes
with every run finished exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_HETERO, bench, bench_in_process

# one pytest-xdist worker takes the whole module, so the module-scoped `one_process` is built once
pytestmark = pytest.mark.xdist_group("one_process")

SWEEP = ["run", "--methods", "erm,groupdro", "--seeds", "0,1", *SMALL_HETERO]
METRIC_COLUMNS = ["method", "wga_mean", "wga_std", "acc_mean", "acc_std", "bga_mean", "delta_acc_mean", "n_seeds"]


def results(out) -> dict[str, dict]:
    """run id -> result.json of every run under ``out``."""
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("digits-hetero/*/*/result.json")}


def numbers(result: dict) -> dict:
    """What must not depend on how a run was launched: the metrics of every evaluation."""
    return {"history": result["history"], "test": result["test"], "selected_epoch": result["selected_epoch"]}


def train_losses(out) -> dict[str, list[float]]:
    """run id -> the mean training loss of every epoch (floats: any numerical difference shows)."""
    return {
        p.parent.name: [json.loads(line)["train_loss"] for line in p.read_text().splitlines()]
        for p in out.glob("digits-hetero/*/*/log.jsonl")
    }


def board(out) -> pd.DataFrame:
    return pd.read_csv(out / "digits-hetero" / "leaderboard.csv")[METRIC_COLUMNS]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: the sweep in one process."""
    out = tmp_path_factory.mktemp("one") / "results"
    proc = bench(*SWEEP, "--workers", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out


def assert_same_runs(out, reference, runs: int = 4) -> None:
    """``out`` has ``runs`` finished runs, each identical to the reference's run of the same id."""
    got, expected = results(out), results(reference)
    assert len(got) == runs and set(got) <= set(expected)
    for run_id, result in got.items():
        assert result["status"] == "ok"
        assert numbers(result) == numbers(expected[run_id]), result["method"]
    losses = train_losses(reference)
    assert train_losses(out) == {run_id: losses[run_id] for run_id in got}, "bitwise-identical training"
    if runs == 4:
        pd.testing.assert_frame_equal(board(out), board(reference))


def test_two_workers_give_the_same_metrics_as_one(tmp_path, one_process):
    proc = bench(*SWEEP, "--workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert_same_runs(tmp_path, one_process)
    assert proc.stdout.count("finished ") == 4


@pytest.mark.slow  # an end-to-end check kept out of the quick suite
def test_a_pool_of_two_workers_trains_stacks_of_two_runs(tmp_path, one_process):
    """--stack 2 with two workers: each worker trains one stack (erm's seeds, groupdro's), every run reports its
    own result, and the numbers are the one-process runs' up to floating-point reassociation."""
    proc = bench(*SWEEP, "--workers", "2", "--stack", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    got, expected = results(tmp_path), results(one_process)
    assert set(got) == set(expected) and {r["stacked_runs"] for r in got.values()} == {2}
    losses, reference = train_losses(tmp_path), train_losses(one_process)
    for run_id, result in got.items():
        assert result["status"] == "ok" and result["parallel_runs"] == 2
        np.testing.assert_allclose(losses[run_id], reference[run_id], rtol=1e-4)


def test_two_workers_per_device_share_the_cpu_after_the_memory_check(tmp_path, one_process):
    proc = bench(*SWEEP, "--seeds", "0", "--workers-per-device", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert_same_runs(tmp_path, one_process, runs=2)
    assert {result["parallel_runs"] for result in results(tmp_path).values()} == {2}


def test_workers_per_device_that_do_not_fit_are_refused_before_training(tmp_path, monkeypatch):
    import benchmark.sweeps.capacity as capacity
    from benchmark.api import sweep
    from benchmark.core.errors import BenchError

    monkeypatch.setattr(capacity, "free_memory_mb", lambda device: 200.0)  # the probe process alone needs more
    with pytest.raises(BenchError, match=r"^--workers-per-device 2: 2 runs need about \d+ MB on cpu .* at most 0 fit"):
        small = dict(seeds=[0], epochs=1, sets=["data.n_mnist1d=600"])
        sweep(methods=["erm", "groupdro"], workers_per_device=2, out=tmp_path, **small)
    assert not list(tmp_path.glob("digits-hetero/*/*/result.json"))
    with pytest.raises(BenchError, match="--workers-per-device is for the local launcher, instead of --workers"):
        sweep(methods=["erm"], seeds=[0], epochs=1, workers=2, workers_per_device=2, out=tmp_path)


def test_ray_launcher_on_a_local_instance(tmp_path, one_process):
    proc = bench(*SWEEP, "--launcher", "ray", "--workers", "2", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert_same_runs(tmp_path, one_process)


@pytest.mark.slow  # an end-to-end check kept out of the quick suite
def test_slurm_launcher_with_submitits_local_executor(tmp_path, one_process):
    options = ["--launcher", "slurm", "--slurm-cluster", "local", "--slurm-cpus", "1", "--seeds", "0"]
    proc = bench(*SWEEP, *options, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert_same_runs(tmp_path, one_process, runs=2)
    assert any((tmp_path / ".submitit").iterdir()), "submitit keeps its job logs under the results folder"


def test_sigkill_mid_sweep_then_resume_finishes_every_run_exactly_once(tmp_path, one_process):
    command = [sys.executable, "-m", "benchmark.cli", *SWEEP, "--workers", "2", "--out", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(results(tmp_path)) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = set(results(tmp_path))
    assert 1 <= len(finished_before) < 4, "the kill landed mid-sweep"
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.glob("digits-hetero/*/*/result.json")}

    resumed = bench(*SWEEP, "--workers", "2", "--out", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("finished ") == 4 - len(finished_before)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "finished runs are not redone"
    run_dirs = list(tmp_path.glob("digits-hetero/*/*"))
    assert len(run_dirs) == 4 and all((d / "result.json").is_file() for d in run_dirs)
    assert not list(tmp_path.rglob("*.tmp")), "no partial result files"
    assert_same_runs(tmp_path, one_process)


def test_a_failed_run_is_kept_until_retry_failed(tmp_path, one_process):
    """A crashed run is recorded as failed; a plain re-run lists it and does not train it; --retry-failed does."""
    out = tmp_path / "results"
    shutil.copytree(one_process, out)
    path = next(out.glob("digits-hetero/erm/*/result.json"))
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "status": "failed", "error": "worker process died"}))
    command = [*SWEEP, "--workers", "1", "--out", str(out)]
    again = bench(*command)
    assert again.returncode == 1 and "finished " not in again.stdout
    assert "worker process died" in again.stdout and "--retry-failed" in again.stdout
    retried = bench(*command, "--retry-failed")
    assert retried.returncode == 0 and retried.stdout.count("finished ") == 1
    rerun = json.loads(path.read_text())
    assert rerun["status"] == "ok" and numbers(rerun) == numbers(stored)


def test_report_reselects_stored_runs_without_training(tmp_path, one_process):
    for rule in ("val-wga", "val-acc", "oracle"):
        proc = bench_in_process(
            "report", "--results", str(one_process), "--out", str(tmp_path / rule), "--select", rule
        )
        assert proc.returncode == 0, proc.stderr
        csv = pd.read_csv(tmp_path / rule / "digits-hetero" / "leaderboard.csv")
        assert set(csv["select"]) == {rule}
    oracle = pd.read_csv(tmp_path / "oracle" / "digits-hetero" / "leaderboard.csv").set_index("method")
    val = pd.read_csv(tmp_path / "val-wga" / "digits-hetero" / "leaderboard.csv").set_index("method")
    assert (oracle["wga_mean"] >= val["wga_mean"]).all(), "the oracle picks each run's best test wga"
