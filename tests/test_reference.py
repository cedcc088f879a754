"""The committed reference leaderboard is what ``bench report`` regenerates from the committed run results, and
the README shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import bench_in_process

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "reports"
GENERATED = ["leaderboard.csv", "leaderboard.md", "leaderboard.tex", "groups.csv", "groups.tex", "cost.csv", "cost.tex"]
DATASETS = sorted(p.name for p in (REPORTS / "runs").iterdir())


def test_reference_covers_the_default_dataset():
    assert "digits-hetero" in DATASETS
    runs = list((REPORTS / "runs" / "digits-hetero").glob("*/*/result.json"))
    assert len(runs) == 8 * 3, "eight methods × three seeds"


@pytest.mark.parametrize("dataset", DATASETS)
def test_committed_reports_regenerate_from_committed_runs(tmp_path, dataset):
    formats = "csv,tex,md"
    proc = bench_in_process(
        "report", "--results", str(REPORTS / "runs"), "--dataset", dataset, "--out", str(tmp_path), "--formats", formats
    )
    assert proc.returncode == 0, proc.stderr
    for name in GENERATED:
        assert (tmp_path / dataset / name).read_text() == (REPORTS / dataset / name).read_text(), name


def test_committed_combined_table_regenerates(tmp_path):
    assert len(DATASETS) >= 3, "digits-hetero, waterbirds-style and celeba-style"
    proc = bench_in_process(
        "report", "--results", str(REPORTS / "runs"), "--out", str(tmp_path), "--formats", "csv,md,tex"
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("combined.csv", "combined.md", "combined.tex"):
        assert (tmp_path / name).read_text() == (REPORTS / name).read_text(), name


def test_readme_shows_the_digits_hetero_leaderboard():
    table = (REPORTS / "digits-hetero" / "leaderboard.md").read_text().split("\n\n")[0].strip()
    readme = (ROOT / "README.md").read_text()
    assert table in readme
    assert "bench run --methods all --dataset digits-hetero --seeds 0,1,2" in readme
