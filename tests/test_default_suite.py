"""The README's headline command: ERM and GroupDRO on digits-hetero at the default budget, three seeds (slow: about
two minutes on a 2-core CPU, run with ``pytest -m slow``), and every built-in method at the quick budget.

Wall times are printed, not asserted (speed is measured, see the README), while accuracy, completeness and skipping
are asserted.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time

import pandas as pd
import pytest
from conftest import BUILTIN_METHODS

# one pytest-xdist worker takes the whole module, so the module-scoped `default_suite` is built once
pytestmark = pytest.mark.xdist_group("default_suite")

COMMAND = ["run", "--methods", "erm,groupdro", "--dataset", "digits-hetero", "--seeds", "0,1,2"]
GROUPS = ["mnist1d", "digits8", "digits16", "digits-proj"]


@pytest.fixture(scope="module")
def default_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("default") / "results"
    exe = shutil.which("bench")
    assert exe, "the bench console script is installed"
    start = time.perf_counter()
    proc = subprocess.run([exe, *COMMAND, "--out", str(out)], capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - start
    print(f"\ndefault suite: {elapsed:.1f}s wall")
    assert proc.returncode == 0, proc.stderr
    return exe, out, proc


def results(out):
    return [json.loads(p.read_text()) for p in sorted(out.glob("digits-hetero/*/*/result.json"))]


@pytest.mark.slow
def test_default_suite_accuracy_and_every_group_reported(default_suite):
    _, out, proc = default_suite
    runs = results(out)
    assert sorted((r["method"], r["seed"]) for r in runs) == [(m, s) for m in ("erm", "groupdro") for s in (0, 1, 2)]
    for r in runs:
        assert r["status"] == "ok"
        assert list(r["test"]["groups"]) == GROUPS
        assert all(acc is not None for acc in r["test"]["groups"].values())
        if r["method"] == "erm":
            assert r["test"]["acc"] >= 85.0, r["test"]
    board = pd.read_csv(out / "digits-hetero" / "leaderboard.csv").set_index("method")
    assert list(board.index) == ["erm", "groupdro"] and (board["n_seeds"] == 3).all()
    assert board.loc["erm", "acc_mean"] >= 85.0
    groups = pd.read_csv(out / "digits-hetero" / "groups.csv")
    assert list(groups.columns[3 : 3 + len(GROUPS)]) == GROUPS and groups[GROUPS].notna().all().all()
    assert "WGA" in proc.stdout and "groupdro" in proc.stdout  # the leaderboard is printed


@pytest.mark.slow
def test_rerun_trains_nothing_and_keeps_the_leaderboard(default_suite):
    exe, out, _ = default_suite
    board = (out / "digits-hetero" / "leaderboard.md").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("digits-hetero/*/*/*")}
    start = time.perf_counter()
    proc = subprocess.run([exe, *COMMAND, "--out", str(out)], capture_output=True, text=True, timeout=300)
    print(f"\nre-run: {time.perf_counter() - start:.1f}s wall")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("done ") == 6 and "finished" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("digits-hetero/*/*/*")} == stamps
    assert (out / "digits-hetero" / "leaderboard.md").read_text() == board


def test_quick_run_of_every_method_has_finite_metrics(tmp_path):
    """``bench run --methods all --seeds 0 --quick`` through the console script: every built-in method, finite metrics
    for every group (on a small MNIST-1D group, to keep the quick suite quick; ``tests/test_numbers.py`` checks
    every method's numbers)."""
    exe = shutil.which("bench")
    out = tmp_path / "results"
    start = time.perf_counter()
    command = [
        exe,
        "run",
        "--methods",
        "all",
        "--dataset",
        "digits-hetero",
        "--seeds",
        "0",
        "--quick",
        "--set",
        "data.n_mnist1d=600",
        "--out",
        str(out),
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=900)
    print(f"\nquick run of all methods: {time.perf_counter() - start:.1f}s wall")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = results(out)
    assert sorted(r["method"] for r in runs) == list(BUILTIN_METHODS)
    for r in runs:
        assert r["status"] == "ok" and r["epochs"] == 3
        for split in ("val", "test"):
            values = [r[split][m] for m in ("wga", "bga", "acc", "mean_group_acc")] + list(r[split]["groups"].values())
            assert all(v is not None and math.isfinite(v) for v in values), (r["method"], r[split])
        assert sum(stage["epochs"] for stage in r["stages"]) == 3
