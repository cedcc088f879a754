"""benchmarks/default_suite.py: times a sweep and writes per-run rows and a total row with the tree's peak RSS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "default_suite.py"


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
