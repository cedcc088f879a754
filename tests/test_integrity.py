"""Issue 13's reliability pass through the CLI: results that cannot be corrupted (copies, wrong shapes, paths that
are folders, other data, split leaks, a disk that fills mid-sweep, concurrent sweeps), inputs rejected before
training, and signals and exits (Ctrl-C, sys.exit in a plugin, DataLoader worker errors)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import SMALL_HETERO, bench, bench_in_process, needs_torchvision
from test_data_adult import write_adult
from test_data_real_images import fake_celeba, fake_waterbirds

from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS
from benchmark.data import build_dataset
from benchmark.runs.recording import error_line

IN_PROCESS = [*SMALL_HETERO, "--workers", "1"]
COMMAND = [sys.executable, "-m", "benchmark.cli"]


def results(out, dataset: str = "digits-hetero") -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in out.glob(f"{dataset}/*/*/result.json")}


def assert_at_most_three_error_lines(proc, code: int) -> list[str]:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "joblib" not in line]
    assert 1 <= len(lines) <= 3, proc.stderr
    return lines


# --- 1. results integrity -------------------------------------------------------------------------------------


def test_a_copied_run_folder_is_counted_once_by_run_and_report(tmp_path):
    out = tmp_path / "r"
    assert bench_in_process("run", "--methods", "erm", "--seeds", "0,1", "--out", str(out), *IN_PROCESS).returncode == 0
    before = (out / "digits-hetero" / "leaderboard.csv").read_text()
    run = next((out / "digits-hetero" / "erm").iterdir())
    shutil.copytree(run, run.with_name(run.name + ".bak"))
    again = bench_in_process("run", "--methods", "erm", "--seeds", "0,1", "--out", str(out), *IN_PROCESS)
    assert again.returncode == 0 and "finished " not in again.stdout
    assert (out / "digits-hetero" / "leaderboard.csv").read_text() == before
    report = bench_in_process("report", "--results", str(out), "--out", str(tmp_path / "rep"), "--formats", "csv")
    assert report.returncode == 0, report.stderr
    assert "a copy of run" in report.stdout and ".bak" in report.stdout
    assert (tmp_path / "rep" / "digits-hetero" / "leaderboard.csv").read_text() == before


@pytest.mark.parametrize("payload", ["[]", "null", '{"status": "ok"}', "corrupt-metric"])
def test_a_wrong_shaped_result_is_one_corrupt_run_listed_by_run_and_report(tmp_path, payload):
    out = tmp_path / "r"
    sweep = ["run", "--methods", "erm", "--seeds", "0,1", "--out", str(out), *IN_PROCESS]
    assert bench_in_process(*sweep).returncode == 0
    damaged, kept = sorted(results(out))
    path = out / "digits-hetero" / "erm" / damaged / "result.json"
    if payload == "corrupt-metric":
        result = json.loads(path.read_text())
        result["history"][0]["test"]["wga"] = "81%"
        payload = json.dumps(result)
    path.write_text(payload)
    report = bench_in_process("report", "--results", str(out), "--out", str(tmp_path / "rep"), "--formats", "csv")
    assert report.returncode == 0 and f"corrupt {path}" in report.stdout, report.stdout + report.stderr
    again = bench_in_process(*sweep)
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stdout + again.stderr
    assert "failed erm seed" in again.stdout and "corrupt" in again.stdout and "--retry-failed" in again.stdout
    retried = bench_in_process(*sweep, "--retry-failed")
    assert retried.returncode == 0 and retried.stdout.count("finished ") == 1
    assert results(out)[damaged]["status"] == "ok" and kept in results(out)


def test_a_folder_where_a_result_file_should_be_is_an_input_error(tmp_path):
    out = tmp_path / "r"
    args = ["run", "--methods", "erm", "--out", str(out), *IN_PROCESS]
    assert bench_in_process(*args, "--seeds", "0").returncode == 0
    first = next((out / "digits-hetero" / "erm").iterdir())
    from benchmark.sweeps.plan import plan

    seed1 = plan(methods=["erm"], dataset="digits-hetero", seeds=[1], epochs=2, sets=["data.n_mnist1d=600"])[0]
    (seed1.directory(out) / "result.json").mkdir(parents=True)
    proc = bench_in_process(*args, "--seeds", "0,1")
    (line,) = assert_at_most_three_error_lines(proc, 2)
    assert "result.json should be a file but is a folder" in line
    assert sorted(p.name for p in (out / "digits-hetero" / "erm").iterdir()) == sorted([first.name, seed1.run_id])
    assert not (seed1.directory(out) / "config.json").exists(), "nothing trained"


def test_other_data_under_the_same_command_is_another_run(tmp_path):
    first, second = write_adult(tmp_path / "a"), write_adult(tmp_path / "b")
    lines = (second / "adult.data").read_text().splitlines()
    (second / "adult.data").write_text("\n".join([lines[1], *lines[1:]]) + "\n")  # one more row: other data
    out = tmp_path / "r"
    sweep = ["run", "--methods", "erm", "--dataset", "adult", "--seeds", "0", "--epochs", "1", "--out", str(out)]
    assert bench(*sweep, "--data-root", str(first), "--workers", "1").returncode == 0
    other = bench(*sweep, "--data-root", str(second), "--workers", "1")
    assert other.returncode == 0 and "finished erm" in other.stdout, "other data must not reuse the result"
    runs = results(out, "adult")
    assert len(runs) == 2 and len({r["data_fingerprint"] for r in runs.values()}) == 2
    shutil.copytree(first, tmp_path / "copy")  # the same files elsewhere: the same data, the same run
    same = bench(*sweep, "--data-root", str(tmp_path / "copy"), "--workers", "1")
    assert same.returncode == 0 and "finished erm" not in same.stdout and len(results(out, "adult")) == 2


@needs_torchvision
def test_an_image_listed_in_two_partitions_is_a_split_leak(tmp_path):
    fake_celeba(tmp_path)
    partition = tmp_path / "list_eval_partition.csv"
    rows = partition.read_text().splitlines()
    name, part = rows[1].split(",")
    partition.write_text("\n".join([*rows, f"{name},{(int(part) + 2) % 3}"]) + "\n")
    cls = DATASETS.get("celeba")
    with pytest.raises(BenchError, match=f"{name} is listed in the test and train splits .1 such files.: a split leak"):
        cls().build(cls.check_options(cls.option_defaults()), str(tmp_path))
    shutil.rmtree(tmp_path / "img_align_celeba")
    fake_waterbirds(tmp_path)
    metadata = tmp_path / "metadata.csv"
    rows = metadata.read_text().splitlines()
    first = rows[1].split(",")
    moved = [first[0], first[1], first[2], str((int(first[3]) + 1) % 3), *first[4:]]
    metadata.write_text("\n".join([*rows, ",".join(moved)]) + "\n")
    with pytest.raises(BenchError, match="a split leak"):
        build_dataset("waterbirds", DATASETS.get("waterbirds").option_defaults(), str(tmp_path))


def limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_disk_that_fills_mid_sweep_keeps_every_finished_result_and_ends_with_one_line(tmp_path):
    """Files up to 2 KB can still be written (the probe, config.json, log.jsonl, the leaderboard), result.json
    (~4 KB) cannot: seed 0 finished before and must survive untouched; seeds 1 and 2 are both tried."""
    out = tmp_path / "r"
    sweep = [*COMMAND, "run", "--methods", "erm", "--out", str(out), *IN_PROCESS]
    assert subprocess.run([*sweep, "--seeds", "0"], capture_output=True).returncode == 0
    (kept,) = results(out)
    kept_bytes = (out / "digits-hetero" / "erm" / kept / "result.json").read_bytes()
    full = subprocess.run(
        [*sweep, "--seeds", "0,1,2"], capture_output=True, text=True, preexec_fn=limit_file_size(2048)
    )
    (line,) = assert_at_most_three_error_lines(full, 1)
    assert line.startswith(f"error: 2 run(s) could not be written to {out}") and "File too large" in line
    assert "re-run the same command" in line
    assert (out / "digits-hetero" / "erm" / kept / "result.json").read_bytes() == kept_bytes
    tried = [p for p in (out / "digits-hetero" / "erm").iterdir() if (p / "config.json").exists()]
    assert len(tried) == 3, "every later seed is tried"
    assert not list(out.rglob("claim")), "claims are released"
    resumed = subprocess.run([*sweep, "--seeds", "0,1,2"], capture_output=True, text=True)
    assert resumed.returncode == 0 and resumed.stdout.count("finished ") == 2, resumed.stdout + resumed.stderr


COUNTS_TRAININGS = """
import os
from benchmark import register_method
from benchmark.methods.erm import ERM


@register_method("counted")
class Counted(ERM):
    '''ERM that appends its run's seed to $TRAININGS each time a training starts.'''

    def on_stage_start(self, stage, data):
        with open(os.environ["TRAININGS"], "a") as handle:
            handle.write(f"{self.info.generator.initial_seed()}\\n")
        return {}
"""


def test_two_concurrent_sweeps_train_each_run_exactly_once(tmp_path):
    plugin = tmp_path / "counted.py"
    plugin.write_text(COUNTS_TRAININGS)
    trainings = tmp_path / "trainings.txt"
    out = tmp_path / "r"
    command = [*COMMAND, "run", "--plugin", str(plugin), "--methods", "counted", "--seeds", "0,1,2"]
    command += [*IN_PROCESS, "--out", str(out)]
    env = {**os.environ, "TRAININGS": str(trainings), "COLUMNS": "200"}
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)]
    time.sleep(1.0)
    procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(trainings.read_text().split()) == ["0", "1", "2"], "each run trained exactly once"
    boards = [(out / "digits-hetero" / "leaderboard.csv").read_text()]
    assert "3" in boards[0]
    assert all(len(list(d.glob("result*"))) == 1 for d in (out / "digits-hetero" / "counted").iterdir())
    assert not list(out.rglob("claim"))


# --- 2. inputs validated before training ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--seeds", "5-2"], "the range 5-2 ends before it starts"),
        (["--seeds", "0-100000000"], "more than 1000 seeds"),
        (["--seeds", "5000000000"], "seeds must be in [0, 4294967295]"),
        (["--set", "train.lr=inf"], "train.lr: inf (must be a finite number)"),
        (["--set", "groupdro.step_size=inf"], "groupdro.step_size: inf (must be a finite number)"),
        (["--set", "train.momentum=50"], "train.momentum: 50.0 (must be in [0, 1))"),
        (["--set", "data.seed=-1"], "data.seed: -1 (must be in [0, 4294967295])"),
        (["--set", "data.n_eval=0"], "data.n_eval: 0 (must be in [10, 280])"),
        (["--set", "data.n_mnist1d=0"], "data.n_mnist1d: 0"),
        (["--set", "data.rotation=inf"], "data.rotation: inf (must be a finite number)"),
        (["--trials", "100000"], "bad --trials 100000: must be between 1 and 1000"),
        (["--methods", "jtt", "--epochs", "1"], "method jtt cannot be set up with these settings"),
        (["--plugin", ""], "empty --plugin"),
        (["--plugin", "not a module"], "bad --plugin 'not a module'"),
    ],
)
def test_bad_input_is_found_before_training(tmp_path, args, fragment):
    out = tmp_path / "r"
    proc = bench_in_process("run", "--out", str(out), *SMALL_HETERO, "--workers", "1", *args)
    (line,) = assert_at_most_three_error_lines(proc, 2)
    assert line.startswith("error: ") and fragment in line, line
    assert not list(out.rglob("result.json")), "no result written for a rejected input"


BAD_PLUGINS = {
    "constructor": (
        "from benchmark import register_method\nfrom benchmark.methods.erm import ERM\n\n\n"
        "@register_method('broken-init')\nclass Broken(ERM):\n    def __init__(self, model, info, width=3):\n"
        "        super().__init__(model, info)\n        raise RuntimeError('needs a GPU cluster')\n",
        "broken-init",
        "method broken-init cannot be set up with these settings: RuntimeError: needs a GPU cluster",
    ),
    "unsafe-name": (
        "from benchmark import register_method\nfrom benchmark.methods.erm import ERM\n\n\n"
        "@register_method('../escape')\nclass Escape(ERM):\n    pass\n",
        "erm",
        "method name '../escape' is not a safe folder name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PLUGINS))
def test_bad_plugins_are_found_before_training(tmp_path, case):
    source, method, fragment = BAD_PLUGINS[case]
    plugin = tmp_path / f"{case.replace('-', '_')}.py"
    plugin.write_text(source)
    out = tmp_path / "r"
    proc = bench("run", "--plugin", str(plugin), "--methods", method, "--out", str(out), *IN_PROCESS)
    (line,) = assert_at_most_three_error_lines(proc, 2)
    assert fragment in line, line
    assert not list(out.rglob("result.json"))


def test_output_paths_that_are_files_are_input_errors(tmp_path):
    taken = tmp_path / "file"
    taken.write_text("not a folder")
    run = bench_in_process("run", "--methods", "erm", "--seeds", "0", "--out", str(taken), *IN_PROCESS)
    (line,) = assert_at_most_three_error_lines(run, 2)
    assert f"results folder {taken} is a file, not a folder" in line
    results_dir = tmp_path / "r"
    assert (
        bench_in_process("run", "--methods", "erm", "--seeds", "0", "--out", str(results_dir), *IN_PROCESS).returncode
        == 0
    )
    report = bench_in_process("report", "--results", str(results_dir), "--out", str(taken), "--formats", "csv")
    (line,) = assert_at_most_three_error_lines(report, 2)
    assert f"--out {taken} is a file, not a folder" in line


@needs_torchvision
def test_missing_pretrained_weights_are_found_before_training(tmp_path):
    fake_waterbirds(tmp_path / "data")
    out = tmp_path / "r"
    command = [*COMMAND, "run", "--dataset", "waterbirds", "--data-root", str(tmp_path / "data"), "--methods", "erm"]
    command += ["--set", "data.encoder=resnet18-pretrained", "--set", "data.image_size=16"]
    command += ["--set", "data.workers=0", "--seeds", "0", "--epochs", "1", "--workers", "1", "--out", str(out)]
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch")}  # an empty cache: nothing is downloaded here
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    (line,) = assert_at_most_three_error_lines(proc, 2)
    assert "pretrained resnet18 weights not found" in line
    assert not list(out.rglob("result.json"))


# --- 3. signals and exits -------------------------------------------------------------------------------------


def test_ctrl_c_prints_one_line_and_exits_130_then_the_sweep_resumes(tmp_path):
    out = tmp_path / "r"
    command = [*COMMAND, "run", "--methods", "erm", "--seeds", "0-9", "--out", str(out), *IN_PROCESS]
    command += ["--epochs", "4"]  # ~1 s per run: the sweep is still going when the first result lands
    # a shell's background job (nohup ... &, some CI runners) starts with SIGINT ignored, and Python then installs
    # no Ctrl-C handler: give the sweep the default disposition a terminal would
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    deadline = time.monotonic() + 300
    while not results(out) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.strip()]
    assert line.startswith("interrupted: ") and "runs finished" in line and "re-run the same command to resume" in line
    done = len(results(out))
    assert 1 <= done < 10
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0 and len(results(out)) == 10
    assert resumed.stdout.count("finished ") == 10 - done, "the finished runs are not redone"


EXITS = """
import sys
from benchmark import register_method
from benchmark.methods.erm import ERM


@register_method("exits")
class Exits(ERM):
    '''Calls sys.exit in its first training step.'''

    def loss(self, data, batch):
        sys.exit(3)
"""


def test_a_plugin_calling_sys_exit_fails_its_run_and_the_sweep_goes_on(tmp_path):
    plugin = tmp_path / "exits.py"
    plugin.write_text(EXITS)
    out = tmp_path / "r"
    proc = bench(
        "run", "--plugin", str(plugin), "--methods", "exits,erm", "--seeds", "0", "--out", str(out), *IN_PROCESS
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    by_method = {r["method"]: r for r in results(out).values()}
    assert by_method["erm"]["status"] == "ok"
    assert by_method["exits"]["status"] == "failed" and by_method["exits"]["error"] == "the run called sys.exit(3)"
    assert "failed exits seed 0" in proc.stdout


class Explodes(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, index):
        raise ValueError(f"image {index} is truncated")


def test_a_dataloader_worker_error_is_one_line():
    loader = torch.utils.data.DataLoader(Explodes(), num_workers=1)
    with pytest.raises(Exception) as caught:
        next(iter(loader))
    assert "Original Traceback" in str(caught.value)
    line = error_line(caught.value)
    assert line == "ValueError: image 0 is truncated (in DataLoader worker process 0)"
    assert "\n" not in error_line(RuntimeError("first line\nsecond line"))
