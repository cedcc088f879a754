"""The bench CLI end to end on tiny budgets: errors, plugins, determinism, skipping finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import SMALL_HETERO, bench, bench_in_process

IN_PROCESS = [*SMALL_HETERO, "--workers", "1"]  # tiny runs: spawning workers would cost more than it saves


def assert_one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--methods", "erm,nosuch"], ["unknown method 'nosuch'", "known: anchor-w2, ", ", erm, groupdro, "]),
        (["--methods", "grupdro"], ["unknown method 'grupdro'", "(did you mean 'groupdro'?)"]),
        (["--set", "train.lrr=1"], ["unknown setting 'train.lrr'", "(did you mean 'train.lr'?)"]),
        (["--select", "val-wgaa"], ["(did you mean 'val-wga'?)"]),
        (["--log", "wandb"], ["bad --log 'wandb'; choose from tensorboard"]),
        (["--dataset", "nosuch"], ["unknown dataset 'nosuch'", "known: ", "digits-hetero, "]),
        (["--set", "train.nosuch=1"], ["unknown setting 'train.nosuch'", "train.lr"]),
        (["--set", "groupdro.step_size=fast"], ["bad value for groupdro.step_size", "not a float"]),
        (["--set", "groupdro.step_size=-1"], ["groupdro.step_size: -1.0 (must be >= 0)"]),
        (["--set", "train.optimizer=rmsprop"], ["choose from adam, sgd"]),
        (["--methods", "erm", "--set", "groupdro.step_size=0.1"], ["not among --methods"]),
        (["--set", "model.k=3"], ["unknown setting 'model.k'", "sections: train, data"]),
        (["--set", "data.nosuch=3"], ["unknown setting 'data.nosuch'", "data.n_mnist1d"]),
        (["--select", "best"], ["bad --select 'best'", "val-wga, val-wca, val-acc, oracle"]),
        (["--seeds", "a,b"], ["bad --seeds"]),
        (["--plugin", "missing_plugin.py"], ["plugin file not found"]),
        (["--device", "tpu"], ["bad --device 'tpu'", "auto, cpu, cuda"]),
        (["--epochs", "0"], ["bad --epochs 0"]),
        (["--trials", "0"], ["bad --trials 0"]),
        (["--set", "train.lr=-0.1"], ["train.lr: -0.1 (must be in (0, 10])"]),
        (["--methods", "anchor-w2", "--set", "anchor-w2.lambda_fit=-1"], ["lambda_fit"]),
        (["--threads", "0"], ["bad --threads 0"]),
        (["--workers", "0"], ["bad --workers 0"]),
        (["--launcher", "k8s"], ["bad --launcher 'k8s'", "local, ray, slurm"]),
        (["--launcher", "slurm"], ["no SLURM here (srun not found)", "--slurm-cluster local"]),
        (["--launcher", "slurm", "--slurm-cluster", "local", "--slurm-time", "0"], ["bad --slurm-time 0"]),
        (["--methods", "erm,,groupdro"], ["bad --methods 'erm,,groupdro': an empty name between commas"]),
        (["--methods", " , "], ["--methods is empty"]),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, args, fragments):
    out = tmp_path / "results"
    proc = bench_in_process("run", "--out", str(out), *args)
    assert_one_line_error(proc, *fragments)
    assert not out.exists()


@pytest.mark.parametrize("option", ["--rounds", "--epochs", "--threads"])
def test_bad_profile_counts_are_one_line_exit_2(option):
    assert_one_line_error(bench_in_process("profile", "--methods", "erm", option, "0"), f"bad {option} 0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_is_an_input_error(tmp_path):
    proc = bench("run", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, "--device cuda requested but no CUDA device is available")
    assert not (tmp_path / "r").exists()


def test_version_short_help_and_whole_command_summaries():
    from benchmark import __version__

    assert bench_in_process("--version").stdout.strip() == f"bench {__version__}"
    helped = bench_in_process("-h")
    summaries = helped.stdout.split("Commands:")[1]
    assert helped.returncode == 0 and "run " in summaries and "..." not in summaries, "no summary cut short"
    assert bench_in_process("run", "-h").returncode == 0


def test_tensorboard_log_holds_every_evaluation_of_log_jsonl(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "results"
    proc = bench_in_process(
        "run", "--methods", "erm", "--seeds", "0", "--out", str(out), "--log", "tensorboard", *IN_PROCESS
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = (out / "digits-hetero" / "erm").iterdir()
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    for tag, value in (("val/wga", lambda r: r["val"]["wga"]), ("train/loss", lambda r: r["train_loss"])):
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [r["step"] for r in records]
        assert [e.value for e in logged] == pytest.approx([value(r) for r in records], rel=1e-6)
    assert "val_group/mnist1d" in events.Tags()["scalars"]


def test_list_shows_a_plugin_files_methods_and_hyperparameters(tmp_path):
    plugin = tmp_path / "focal.py"
    plugin.write_text(readme_plugin())
    listed = bench_in_process("list", "methods", "--plugin", str(plugin))
    assert listed.returncode == 0, listed.stderr
    assert "focal" in listed.stdout and "gamma=2.0" in listed.stdout


PLUGIN_FAILURES = {
    "raises": ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
    "missing-dependency": (
        "import no_such_dependency_anywhere\n",
        "failed to import: ModuleNotFoundError: No module named 'no_such_dependency_anywhere'",
    ),
    "exits": ("import sys\n\nsys.exit(3)\n", "called sys.exit(3) at import"),
    "exits-quietly": ("import sys\n\nsys.exit()\n", "called sys.exit() at import"),
}


@pytest.mark.parametrize("kind", ["file", "module"])
@pytest.mark.parametrize("case", sorted(PLUGIN_FAILURES))
def test_a_plugin_failing_at_import_is_one_line_exit_2_before_training(tmp_path, monkeypatch, case, kind):
    source, what = PLUGIN_FAILURES[case]
    package = tmp_path / f"failing_{case.replace('-', '_')}_{kind}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = str((package / "plugin.py").resolve()) if kind == "file" else f"{package.name}.plugin"
    out = tmp_path / "results"
    proc = bench_in_process("run", "--plugin", spec, "--methods", "erm", "--out", str(out), *IN_PROCESS)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: plugin {spec} {what}"]
    assert not out.exists()


def test_a_plugin_file_that_is_a_symlink_loop_is_one_line(tmp_path):
    plugin = tmp_path / "loop.py"
    plugin.symlink_to("loop.py")
    out = tmp_path / "results"
    proc = bench_in_process("run", "--plugin", str(plugin), "--methods", "erm", "--out", str(out), *IN_PROCESS)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"error: symlink loop at {plugin} (while looking for plugin file {plugin})"]
    assert not out.exists()


def test_list_and_describe_errors():
    """(``describe`` of every dataset: test_describe.py.)"""
    listed = bench("list")
    assert listed.returncode == 0 and "groupdro" in listed.stdout and "digits-hetero" in listed.stdout
    assert_one_line_error(bench_in_process("describe", "nosuch"), "unknown dataset")


def test_report_errors(tmp_path):
    missing = bench_in_process("report", "--results", str(tmp_path / "none"))
    assert_one_line_error(missing, "results folder not found")
    assert_one_line_error(bench_in_process("report", "--results", str(tmp_path)), "no finished runs")
    assert_one_line_error(bench_in_process("report", "--results", str(tmp_path), "--dataset", ""), "--dataset is empty")


def test_report_names_a_requested_dataset_without_runs(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "out"
    trained = bench_in_process("run", "--methods", "erm", "--seeds", "0", "--out", str(runs), *IN_PROCESS)
    assert trained.returncode == 0, trained.stderr
    proc = bench_in_process("report", "--results", str(runs), "--dataset", "digits-hetero,nosuch", "--out", str(out))
    assert_one_line_error(proc, "no finished runs", "for dataset nosuch")
    assert not out.exists()


def results_by_run(out) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob("digits-hetero/*/*/result.json")}


def test_rerun_skips_finished_runs_force_redoes_them_and_a_changed_setting_is_new(tmp_path):
    """(That the same seed gives identical metrics in other processes is tested with the launchers.)"""
    first = tmp_path / "a"
    proc = bench(
        "run", "--methods", "erm,groupdro", "--seeds", "0", "--device", "cpu", "--out", str(first), *IN_PROCESS
    )
    assert proc.returncode == 0, proc.stderr
    for rid, result in results_by_run(first).items():
        assert (first / "digits-hetero" / result["method"] / rid / "log.jsonl").read_text().count("\n") == 2
    board = (first / "digits-hetero" / "leaderboard.csv").read_text()
    stamps = {p: p.stat().st_mtime_ns for p in first.glob("digits-hetero/*/*/*")}
    again = bench_in_process(
        "run", "--methods", "erm,groupdro", "--seeds", "0", "--device", "cpu", "--out", str(first), *IN_PROCESS
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done ") == 2 and "finished " not in again.stdout
    rows = [line for line in again.stdout.splitlines() if line.startswith("| ")]  # not a terminal: Markdown rows
    assert rows[0].startswith("| method | ")
    assert sorted(row.split(" | ")[0] for row in rows[1:]) == ["| erm", "| groupdro"]
    assert all(row.count(" | ") == rows[0].count(" | ") and "…" not in row for row in rows), "whole rows, none cut"
    assert {p: p.stat().st_mtime_ns for p in first.glob("digits-hetero/*/*/*")} == stamps, "no run was redone"
    assert (first / "digits-hetero" / "leaderboard.csv").read_text() == board

    forced = bench_in_process(
        "run", "--methods", "erm", "--seeds", "0", "--device", "cpu", "--out", str(first), "--force", *IN_PROCESS
    )
    assert forced.returncode == 0 and forced.stdout.count("finished ") == 1
    leaderboard = pd.read_csv(first / "digits-hetero" / "leaderboard.csv")
    assert set(leaderboard["method"]) == {"erm", "groupdro"}, "a sweep's leaderboard covers the folder's runs"

    changed = bench_in_process(
        "run", "--methods", "erm", "--seeds", "0", "--out", str(first), *IN_PROCESS, "--set", "train.lr=0.002"
    )
    assert changed.returncode == 0 and changed.stdout.count("finished ") == 1, "a changed setting is a new run"
    assert len(results_by_run(first)) == 3


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_plugin() -> str:
    """The complete plugin shown in the README's "Add a method" section."""
    section = README.read_text().split("## Add a method", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_plugin_example_passes_the_projects_lint(tmp_path):
    plugin = tmp_path / "focal.py"
    plugin.write_text(readme_plugin())
    config = README.parent / "pyproject.toml"
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config", str(config), str(plugin)], text=True)
    assert lint.returncode == 0


def test_plugin_method_from_a_file_runs_and_reaches_the_leaderboard(tmp_path):
    plugin = tmp_path / "elsewhere" / "focal.py"
    plugin.parent.mkdir()
    plugin.write_text(readme_plugin())
    out = tmp_path / "results"
    proc = bench(
        "run",
        "--plugin",
        str(plugin),
        "--methods",
        "erm,focal",
        "--seeds",
        "0,1",
        "--set",
        "focal.gamma=1",
        "--out",
        str(out),
        *IN_PROCESS,
    )
    assert proc.returncode == 0, proc.stderr
    board = pd.read_csv(out / "digits-hetero" / "leaderboard.csv")
    assert set(board["method"]) == {"erm", "focal"}
    assert board.set_index("method").loc["focal", "n_seeds"] == 2
    config = json.loads(next(out.glob("digits-hetero/focal/*/config.json")).read_text())
    assert config["hparams"] == {"gamma": 1.0}
    report_dir = tmp_path / "reports"
    assert bench("report", "--results", str(out), "--out", str(report_dir)).returncode == 0
    assert "focal" in (report_dir / "digits-hetero" / "leaderboard.md").read_text()


def test_an_empty_out_is_refused_instead_of_writing_into_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proc = bench_in_process("run", "--methods", "erm", "--seeds", "0", "--quick", "--out", "")
    assert_one_line_error(proc, "bad --out '': give a folder")
    assert list(tmp_path.iterdir()) == []
