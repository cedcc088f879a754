"""Faults: a full disk before training, SIGTERM mid-sweep, a worker process dying, and the
switch for deterministic algorithms (concurrent sweeps: test_integrity.py)."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SMALL_HETERO, bench, toy_dataset

from benchmark.core.registry import METHODS, register_method
from benchmark.methods.erm import ERM
from benchmark.runs.spec import Execution, RunSpec, TrainConfig
from benchmark.training.engine import train

SWEEP = ["run", "--methods", "erm,groupdro", "--seeds", "0,1", *SMALL_HETERO]
COMMAND = [sys.executable, "-m", "benchmark.cli"]

if "test-records-determinism" not in METHODS:

    @register_method("test-records-determinism")
    class RecordsDeterminism(ERM):
        """ERM that records whether deterministic algorithms were on during its steps."""

        seen: list = []

        def loss(self, data, batch):
            RecordsDeterminism.seen.append(torch.are_deterministic_algorithms_enabled())
            return super().loss(data, batch)


def results(out) -> list[dict]:
    return [json.loads(p.read_text()) for p in out.glob("digits-hetero/*/*/result.json")]


def full_disk() -> None:
    """In the child: any file write beyond 0 bytes fails with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_full_disk_is_one_clear_error_before_training(tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [*COMMAND, *SWEEP, "--workers", "1", "--out", str(out)], capture_output=True, text=True, preexec_fn=full_disk
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    # (joblib, imported by scikit-learn, warns first that it cannot use shared memory on this "full disk")
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: results folder {out} is not writable: File too large"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(out.rglob("*")), "nothing trained, nothing left behind"


def test_sigterm_mid_sweep_stops_the_workers_and_the_sweep_resumes(tmp_path):
    command = [*COMMAND, *SWEEP, "--workers", "2", "--out", str(tmp_path)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while len(results(tmp_path)) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # the sweep's process only, as a scheduler or `kill` would
    proc.wait(timeout=60)
    assert proc.returncode != 0
    for _ in range(100):  # the workers follow
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker processes survived SIGTERM")
    done = len(results(tmp_path))
    assert 1 <= done < 4
    resumed = bench(*SWEEP, "--workers", "2", "--out", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("finished ") == 4 - done
    assert len(results(tmp_path)) == 4 and all(r["status"] == "ok" for r in results(tmp_path))


KILLER = '''
import os
import signal

from benchmark import register_method
from benchmark.methods.erm import ERM


@register_method("dies")
class Dies(ERM):
    """Kills its own process at the first step, as the out-of-memory killer would."""

    def loss(self, data, batch):
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_dying_worker_is_a_failed_run_and_the_sweep_goes_on(tmp_path):
    plugin = tmp_path / "dies.py"
    plugin.write_text(KILLER)
    out = tmp_path / "results"
    args = ["run", "--plugin", str(plugin), "--methods", "dies,erm", "--seeds", "0", *SMALL_HETERO]
    proc = bench(*args, "--workers", "2", "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    by_method = {}
    for r in results(out):
        by_method.setdefault(r["method"], []).append(r)
    assert [r["status"] for r in by_method["erm"]] == ["ok"]
    assert [r["status"] for r in by_method["dies"]] == ["failed"]
    assert "worker process died (exit code -9)" in by_method["dies"][0]["error"]
    assert "failed dies seed 0" in proc.stdout


def test_deterministic_switch_is_on_during_the_run_and_restored_after():
    RecordsDeterminism.seen.clear()
    before = torch.are_deterministic_algorithms_enabled()
    spec = RunSpec("toy", {}, "test-records-determinism", {}, 0, TrainConfig(epochs=1, batch_size=8))
    train(spec, toy_dataset(), execution=Execution(deterministic=True))
    assert RecordsDeterminism.seen and all(RecordsDeterminism.seen)
    assert torch.are_deterministic_algorithms_enabled() == before
    RecordsDeterminism.seen.clear()
    train(spec, toy_dataset())
    assert not any(RecordsDeterminism.seen)
