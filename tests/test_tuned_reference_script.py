"""``bench reference`` (:mod:`benchmark.tools.reference`) end to end on a tiny budget: the two-phase sweep per
dataset, one row per invocation in regeneration.csv, the reports with every rule, and a rerun that trains nothing
(slow: two subprocess sweeps; the quick suite tests ``--tune-seeds`` itself in test_tuning.py and the command's
bad input in test_tools.py)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest
from conftest import bench

from benchmark.runs.store import iter_results

TINY = ["--", "--methods", "erm", "--trials", "2", "--epochs", "1", "--set", "data.n_mnist1d=600"]


def regenerate(out: Path) -> subprocess.CompletedProcess:
    """``bench reference`` of digits-hetero alone at the tiny budget, into ``out``."""
    return bench("reference", "--datasets", "digits-hetero", "--workers", "1", "--out", str(out), *TINY)


@pytest.mark.slow
def test_the_regeneration_command_tunes_records_its_time_and_reports(tmp_path):
    out = tmp_path / "tuned"
    proc = regenerate(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = list(iter_results(out / "runs", "digits-hetero"))
    assert len(runs) == 11, "two trials on seed 0, the winner on seeds 1 to 9"
    assert {r["method"] for r in runs} == {"erm"} and all(r["status"] == "ok" for r in runs)
    for name in ("leaderboard.csv", "selection.md", "tuning.md", "validity.csv"):
        assert (out / "digits-hetero" / name).is_file(), name
    again = regenerate(out)
    assert again.returncode == 0, again.stderr[-2000:]
    with (out / "regeneration.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["dataset"], r["workers"], r["runs_before"], r["runs_after"]) for r in rows] == [
        ("digits-hetero", "1", "0", "11"),
        ("digits-hetero", "1", "11", "11"),
    ]
    assert float(rows[0]["wall_s"]) > float(rows[1]["wall_s"]) >= 0, "the rerun trains nothing"
