"""The maintained tools: ``bench time-suite`` (a timed sweep: per-run rows and a total row with the tree's peak RSS,
the worker time split into shares), ``bench power`` and ``bench tuning-bias`` (the README's tables and figures
regenerate from the committed tuned runs), and every tool's bad input as one line with exit code 2."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from statistics import mean

import pandas as pd
import pytest
from conftest import bench, bench_in_process
from test_cli import assert_one_line_error

from benchmark.report.efficiency import efficiency
from benchmark.runs.store import iter_results
from benchmark.tools.suite import COMMAND, suite_arguments

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "reports" / "tuned" / "runs"
README = ROOT / "README.md"


def readme_text() -> str:
    """The README with every run of whitespace made one space (its paragraphs wrap anywhere)."""
    return re.sub(r"\s+", " ", README.read_text())


def test_time_suite_writes_runs_and_total(tmp_path):
    csv = tmp_path / "suite.csv"
    shrink = ["--methods", "erm", "--seeds", "0", "--epochs", "1", "--set", "data.n_mnist1d=600", "--workers", "1"]
    proc = bench("time-suite", "--out", str(tmp_path / "results"), "--csv", str(csv), "--", *shrink)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = pd.read_csv(csv)
    assert list(table["method"]) == ["erm", "total"]
    erm, total = table.iloc[0], table.iloc[1]
    assert erm["seed"] == 0 and erm["device"] == "cpu" and erm["steps_per_s"] > 0 and 0 <= erm["test_wga"] <= 100
    assert total["wall_s"] >= erm["wall_s"] > 0
    assert total["peak_rss_mb"] > 100, "the sampled tree includes the sweep's Python process"
    assert "peak RSS of the process tree" in proc.stdout
    assert 0 < total["efficiency"] < 1 and total["train_s"] == erm["train_s"]
    assert "efficiency (training time / wall × workers)" in proc.stdout and "startup" in proc.stdout


def test_the_sweeps_worker_time_splits_into_training_setup_evaluation_and_outside():
    """Two workers over 10 s: worker 1 runs A (1-5 s) then C (5.5-9 s), worker 2 runs B (2-7 s); the trainer
    takes 3 s of each run, 2 s of it training and 0.5 s stage setup."""
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
    assert suite_arguments([]) == [*COMMAND, "--workers", "2"]
    assert suite_arguments(["--workers", "1"]) == [*COMMAND, "--workers", "1"]
    per_device = ["--device", "cuda", "--workers-per-device", "4"]
    assert suite_arguments(per_device) == [*COMMAND, *per_device]


def test_the_readmes_power_table_regenerates_from_the_committed_runs():
    proc = bench_in_process("power", "--results", str(RUNS), "--sizes", "1000")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    datasets = sorted(p.name for p in RUNS.iterdir())
    assert [line.split(" | ")[0].strip("| ") for line in lines[2:]] == datasets
    readme = README.read_text()
    for line in lines:
        assert line in readme, line


def test_tuning_bias_compares_the_tuning_seed_with_the_winners_other_seeds(tmp_path):
    """Two methods of the committed tuned reference: the leaderboard's winner (trial 5 for ERM) on its tuning seed
    (0) against its other seeds; --held-out reports the winners' other seeds alone."""
    committed = RUNS / "digits-lt"
    for method in ("erm", "dro-lt"):
        shutil.copytree(committed / method, tmp_path / "runs" / "digits-lt" / method)
    held_out = tmp_path / "out"
    proc = bench_in_process("tuning-bias", "--results", str(tmp_path / "runs"), "--held-out", str(held_out))
    assert proc.returncode == 0, proc.stderr
    results = [r for r in iter_results(tmp_path / "runs") if r["method"] == "erm"]
    assert len(results) == 19, "10 trials on seed 0, the winner on seeds 1-9"
    winner = {r["seed"]: r["test"]["wga"] for r in results if r["trial"] == 5}
    assert sorted(winner) == list(range(10))
    rest = mean(winner[seed] for seed in range(1, 10))
    rank = 1 + sum(wga > winner[0] for wga in winner.values())
    row = f"| digits-lt | erm | {winner[0]:.1f} | {rest:.1f} | {winner[0] - rest:+.1f} | {rank} |"
    assert row in proc.stdout.splitlines()
    board = pd.read_csv(held_out / "digits-lt" / "leaderboard.csv").set_index("method")
    assert board.loc["erm", "n_seeds"] == 9 and board.loc["erm", "wga_mean"] == pytest.approx(rest, abs=1e-3)
    assert board.loc["erm", "trials"] == 1, "only the winner's runs on the held-out seeds"


def test_the_readmes_tuning_bias_figures_are_the_committed_runs():
    """README "Tuned reference leaderboards": each dataset's gap averaged over its methods and celeba-style's gap
    per method, as ``bench tuning-bias`` computes them from the committed runs (its table rounds each row)."""
    proc = bench_in_process("tuning-bias", "--results", str(RUNS))
    assert proc.returncode == 0, proc.stderr
    rows = [line.strip("| ").split(" | ") for line in proc.stdout.splitlines()[2:]]
    gaps: dict[str, list[float]] = {}
    for dataset, _, tuned, others, _, _ in rows:
        gaps.setdefault(dataset, []).append(float(tuned) - float(others))

    def signed(value: float) -> str:
        return f"{value:+.1f}".replace("-", "−")

    averages = {dataset: signed(mean(values)) for dataset, values in gaps.items()}
    sentence = (
        f"The gap averaged over the eight methods is {averages['digits-hetero-spurious']} points on "
        f"digits-hetero-spurious, {averages['digits-hetero']} on digits-hetero, {averages['digits-lt']} on "
        f"digits-lt, {averages['waterbirds-style']} on waterbirds-style and {averages['celeba-style']} on celeba-style"
    )
    readme = readme_text()
    assert sentence in readme
    celeba = {method: gap for dataset, method, _, _, gap, _ in rows if dataset == "celeba-style"}
    quoted = f"ERM {celeba['erm']}, mr2 {celeba['mr2']}, JTT {celeba['jtt']}, JM1 {celeba['jm1']}"
    assert quoted in readme and f"{signed(float(celeba['nc-frozen']))} for nc-frozen" in readme


def test_power_needs_two_methods_to_compare(tmp_path):
    shutil.copytree(RUNS / "digits-lt" / "erm", tmp_path / "digits-lt" / "erm")
    proc = bench_in_process("power", "--results", str(tmp_path))
    assert_one_line_error(proc, "digits-lt has finished runs of one method only")


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["power", "--results", "{tmp}/none"], ["results folder not found: {tmp}/none"]),
        (["power", "--seeds", "10"], ["bad --seeds '10'", "at least two"]),
        (["power", "--seeds", "1,10"], ["bad --seeds '1,10'", ">= 2"]),
        (["power", "--sizes", "ten"], ["bad --sizes 'ten'", "integers"]),
        (["power", "--results", str(RUNS), "--datasets", "nope"], ["no finished runs under", "for dataset nope"]),
        (["tuning-bias", "--results", "{tmp}"], ["no finished runs under {tmp}"]),
        (["reference", "--datasets", "digits-lt,nope", "--out", "{tmp}/tuned"], ["unknown dataset 'nope'"]),
        (["reference", "--datasets", "digits-lt,digits-lt", "--out", "{tmp}/tuned"], ["digits-lt named twice"]),
        (["reference", "--workers", "0", "--out", "{tmp}/tuned"], ["bad --workers 0"]),
        (["time-suite", "--out", "{tmp}/file", "--csv", "{tmp}/suite.csv"], ["--out {tmp}/file is a file"]),
        (["time-suite", "--out", "{tmp}/suite", "--csv", "{tmp}"], ["--csv {tmp} is a folder"]),
    ],
)
def test_bad_tool_input_is_one_line_exit_2_nothing_written(tmp_path, args, fragments):
    (tmp_path / "file").write_text("not a folder")
    before = sorted(tmp_path.iterdir())
    proc = bench_in_process(*(a.format(tmp=tmp_path) for a in args))
    assert_one_line_error(proc, *(f.format(tmp=tmp_path) for f in fragments))
    assert sorted(tmp_path.iterdir()) == before
