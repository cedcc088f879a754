"""A sweep as one file: ``bench export`` writes every run as a Parquet row; ``bench report`` and ``bm.leaderboard``
read it exactly as the folder (byte for byte); ``bench import`` restores a folder that a sweep resumes from
without retraining; two exports of disjoint sweeps merge by concatenation; bad input is one line."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import bench_in_process

import benchmark as bm

SWEEP = ("--dataset", "digits-lt", "--set", "data.n_max=60", "--set", "data.imbalance=5", "--set", "data.n_eval=20",
         "--quick", "--workers", "1", "--no-report")  # fmt: skip
FORMATS = ("--formats", "csv,md,tex,html")


def run(out: Path, methods: str, seeds: str) -> str:
    done = bench_in_process("run", "--methods", methods, "--seeds", seeds, *SWEEP, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def same_tree(a: Path, b: Path) -> None:
    """Every file of the two report folders, byte for byte."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all(filecmp.cmp(a / f, b / f, shallow=False) for f in files), [
        f for f in files if not filecmp.cmp(a / f, b / f, shallow=False)
    ]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "results"
    run(out, "erm,logit-adj", "0,1")
    return out


def test_reports_of_an_export_equal_the_folders_byte_for_byte(tmp_path, sweep):
    export = tmp_path / "sweep.parquet"
    done = bench_in_process("export", str(sweep), "--out", str(export))
    assert done.returncode == 0 and "4 runs exported" in done.stdout, done.stdout + done.stderr
    for results, out in ((sweep, tmp_path / "folder"), (export, tmp_path / "file")):
        reported = bench_in_process("report", "--results", str(results), "--out", str(out), *FORMATS)
        assert reported.returncode == 0, reported.stdout + reported.stderr
    same_tree(tmp_path / "folder", tmp_path / "file")
    pd.testing.assert_frame_equal(bm.leaderboard(export), bm.leaderboard(sweep))


def test_an_export_row_holds_identity_metrics_history_and_files(tmp_path, sweep):
    rows = pd.read_parquet(exported(sweep, tmp_path)).set_index("run_id")
    for path in sweep.glob("*/*/*/result.json"):
        result, row = json.loads(path.read_text()), rows.loc[path.parent.name]
        assert (row["dataset"], row["method"], row["seed"], row["status"]) == (
            result["dataset"], result["method"], result["seed"], "ok"
        )  # fmt: skip
        assert row["test_wga"] == result["test"]["wga"] and row["val_acc"] == result["val"]["acc"]
        assert all(row[f"test_group:{g}"] == acc for g, acc in result["test"]["groups"].items())
        assert json.loads(row["history"]) == result["history"] and row["selected_epoch"] == result["selected_epoch"]
        assert json.loads(row["environment"]) == result["environment"]
        assert row["log"] == (path.parent / "log.jsonl").read_text() and json.loads(row["result"]) == result


def test_import_restores_a_folder_a_sweep_resumes_from_without_retraining(tmp_path, sweep):
    export = exported(sweep, tmp_path)
    restored = tmp_path / "restored"
    done = bench_in_process("import", str(export), "--out", str(restored))
    assert done.returncode == 0 and "4 runs restored" in done.stdout, done.stdout + done.stderr
    for path in sweep.glob("*/*/*/*"):
        copy = restored / path.relative_to(sweep)
        if path.name == "result.json":
            assert json.loads(copy.read_text()) == json.loads(path.read_text())
        else:
            assert copy.read_text() == path.read_text(), path.name
    stamps = {p: p.stat().st_mtime_ns for p in restored.glob("*/*/*/result.json")}
    printed = run(restored, "erm,logit-adj", "0,1")
    assert "finished" not in printed and printed.count("done ") == 4, printed
    assert stamps == {p: p.stat().st_mtime_ns for p in restored.glob("*/*/*/result.json")}, "nothing retrained"
    again = bench_in_process("import", str(export), "--out", str(restored))
    assert "0 runs restored" in again.stdout and "4 already there" in again.stdout


def exported(results: Path, tmp_path: Path) -> Path:
    path = tmp_path / f"{results.name}.parquet"
    assert bench_in_process("export", str(results), "--out", str(path)).returncode == 0
    return path


def test_exports_of_disjoint_sweeps_merge_by_concatenation(tmp_path, sweep):
    other = tmp_path / "other"
    run(other, "erm,logit-adj", "2")
    parts = [exported(sweep, tmp_path), exported(other, tmp_path)]
    merged = tmp_path / "merged.parquet"
    pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).to_parquet(merged)
    union = tmp_path / "union"
    for part in parts:
        bench_in_process("import", str(part), "--out", str(union))
    pd.testing.assert_frame_equal(bm.leaderboard(merged), bm.leaderboard(union))
    assert set(bm.leaderboard(merged)["n_seeds"]) == {3}


def test_bad_export_and_import_input_is_one_line_and_writes_nothing(tmp_path, sweep):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "foreign.parquet")
    cases = [
        (("export", str(tmp_path / "absent"), "--out", str(tmp_path / "x.parquet")), "results folder not found"),
        (("export", str(tmp_path / "empty"), "--out", str(tmp_path / "x.parquet")), "no runs under"),
        (("export", str(sweep), "--out", str(tmp_path / "x.csv")), "give a .parquet file"),
        (("import", str(tmp_path / "absent.parquet"), "--out", str(tmp_path / "x")), "export file not found"),
        (("import", str(tmp_path / "junk.parquet"), "--out", str(tmp_path / "x")), "is not a readable export"),
        (("import", str(tmp_path / "foreign.parquet"), "--out", str(tmp_path / "x")), "not an export of this suite"),
        (("import", str(sweep), "--out", str(tmp_path / "x")), "give a .parquet file"),
        (("report", "--results", str(tmp_path / "absent.parquet")), "results file not found"),
    ]
    for args, message in cases:
        refused = bench_in_process(*args)
        text = refused.stdout + refused.stderr
        assert refused.returncode == 2 and message in text and len(text.strip().splitlines()) == 1, (args, text)
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "x").exists()


def test_the_tools_that_read_a_sweep_read_its_export_alike(tmp_path, sweep):
    export = exported(sweep, tmp_path)
    for command in (("power", "--seeds", "3,5"), ("tuning-bias",)):
        outputs = [bench_in_process(*command, "--results", str(results)) for results in (sweep, export)]
        assert [o.returncode for o in outputs] == [0, 0], [o.stdout + o.stderr for o in outputs]
        assert outputs[0].stdout == outputs[1].stdout and outputs[0].stdout.strip(), command
