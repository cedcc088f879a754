"""``bench report`` on stored fake results: every format by default, the table options, one-line input errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import bench_in_process
from test_report import table_rows
from test_report_outputs import PLOTS, suite

from benchmark.runs.store import SCHEMA_VERSION


@pytest.fixture
def stored(tmp_path):
    """A results folder with the fake runs of two datasets, laid out as ``bench run`` writes them."""
    folder = tmp_path / "results"
    for result in suite("toy") + suite("other"):
        path = folder / result["dataset"] / result["method"] / result["run_id"] / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**result, "schema": SCHEMA_VERSION}))
    return folder


def test_report_writes_every_format_by_default(tmp_path, stored):
    out = tmp_path / "reports"
    proc = bench_in_process("report", "--results", str(stored), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    for name in ("leaderboard.csv", "groups.csv", "cost.csv", "leaderboard.md", "report.html", *PLOTS):
        assert (out / "toy" / name).is_file() and (out / "other" / name).is_file(), name
    assert all((out / f"combined.{ext}").is_file() for ext in ("csv", "md", "tex"))
    assert r"\documentclass" not in (out / "toy" / "leaderboard.tex").read_text()
    assert "combined.{csv,md,tex}" in proc.stdout


def test_report_defaults_write_into_the_results_folder_not_over_reports(tmp_path, stored, monkeypatch):
    """From a repository root, ``bench report`` without options must leave the committed reports alone."""
    committed = tmp_path / "reports" / "toy" / "leaderboard.md"
    committed.parent.mkdir(parents=True)
    committed.write_text("the committed reference\n")
    monkeypatch.chdir(tmp_path)
    proc = bench_in_process("report")
    assert proc.returncode == 0, proc.stderr
    assert committed.read_text() == "the committed reference\n" and len(list((tmp_path / "reports").rglob("*"))) == 2
    assert (stored / "reports" / "toy" / "leaderboard.md").is_file() and (stored / "reports" / "combined.csv").is_file()


def test_report_table_options(tmp_path, stored):
    out = tmp_path / "reports"
    args = ["--formats", "md,tex", "--columns", "wga,acc", "--precision", "2", "--standalone"]
    proc = bench_in_process("report", "--results", str(stored), "--out", str(out), "--dataset", "toy", *args)
    assert proc.returncode == 0, proc.stderr
    rows = table_rows((out / "toy" / "leaderboard.md").read_text())
    assert rows["header"] == ["Method", "WGA ↑", "Acc ↑", "Seeds", "Trials"] and rows["erm"][0] == "50.00 ± 10.00"
    assert (out / "toy" / "leaderboard.tex").read_text().count(r"\documentclass{article}") == 1
    assert not list(out.rglob("*.csv")) and not list(out.rglob("*.png")) and not list(out.glob("combined.*"))


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--formats", "md,pdf"], "bad --formats entry 'pdf'; choose from csv, tex, md, png, html"),
        (["--precision", "-1"], "bad --precision -1: must be between 0 and 6"),
        (["--precision", "7"], "bad --precision 7"),
        (["--columns", " , "], "--columns is empty"),
        (["--columns", "wga,nosuch"], "bad --columns entry 'nosuch': not a metric of these runs; choose from wga, "),
        (["--dataset", "/some/absolute/path"], "bad dataset name '/some/absolute/path': a dataset's name, not a path"),
        (["--dataset", "toy,../x"], "bad dataset name '../x'"),
        (["--out", ""], "bad --out '': give a folder"),
    ],
)
def test_bad_report_options_are_one_line_errors(tmp_path, stored, args, fragment):
    out = tmp_path / "reports"
    proc = bench_in_process("report", "--results", str(stored), "--out", str(out), *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0] and not out.exists()


def test_several_selection_rules_side_by_side(tmp_path, stored):
    out = tmp_path / "reports"
    proc = bench_in_process("report", "--results", str(stored), "--out", str(out), "--select", "val-wga,oracle")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "toy" / "selection.csv")
    assert sorted(set(table["select"])) == ["oracle", "val-wga"]
    assert len(table) == 2 * table["label"].nunique(), "every method under every rule"
    board = pd.read_csv(out / "toy" / "leaderboard.csv")
    assert set(board["select"]) == {"val-wga"}, "the reports use the first rule"
    by_rule = table.set_index(["label", "select"])
    for _, row in board.iterrows():
        assert by_rule.loc[(row["label"], "val-wga"), "wga_mean"] == pytest.approx(row["wga_mean"], abs=1e-4)
    rows = table_rows((out / "toy" / "selection.md").read_text())
    assert rows["header"] == ["Method", "WGA ↑ (val-wga)", "WGA ↑ (oracle)"] and "(trial " in rows["erm"][0]


def test_val_wca_on_runs_without_class_accuracy_is_one_line(tmp_path, stored):
    proc = bench_in_process("report", "--results", str(stored), "--out", str(tmp_path / "r"), "--select", "val-wca")
    assert proc.returncode == 2 and "--select val-wca: these runs do not record val wca" in proc.stderr
