"""Run ids, atomic and readable result files, the one results reader (shapes, copies) and run claims."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from benchmark.runs.spec import Execution, Run, RunSpec, TrainConfig
from benchmark.runs.state import claim_run, read_claim, release_claim
from benchmark.runs.store import iter_results, read_result, write_json_atomic


def spec(device="auto", plugins=(), select="val-wga", trial=0, family_id="", **changes) -> Run:
    base = dict(
        dataset="digits-hetero", data_options={"seed": 0}, method="erm", hparams={}, seed=0, train=TrainConfig()
    )
    identity = RunSpec(**{**base, **changes})
    return Run(identity, Execution(device=device, plugins=plugins), select, trial, family_id)


def ok_result(run: Run, wga: float = 50.0) -> dict:
    """The smallest result.json of a finished run that the reader accepts."""
    metrics = {"wga": wga, "acc": 60.0, "groups": {"g0": wga, "g1": 70.0}}
    cost = {"train_time_s": 1.0, "steps_per_s": 10.0, "peak_memory_mb": 100.0}
    return {**run.header(), "status": "ok", **cost, "history": [{"epoch": 1, "val": metrics, "test": metrics}]}


def store(out, run: Run, payload) -> None:
    write_json_atomic(run.directory(out) / "result.json", payload)


def test_run_id_is_stable_and_depends_on_what_determines_the_run():
    assert spec().run_id == spec().run_id
    assert len(spec().run_id) == 12
    changed = [
        spec(seed=1),
        spec(hparams={"x": 1}),
        spec(train=TrainConfig(lr=0.1)),
        spec(data_options={"seed": 1}),
        spec(method="groupdro"),
        spec(data_fingerprint="abc"),
    ]
    assert len({s.run_id for s in changed} | {spec().run_id}) == len(changed) + 1
    # how a run is executed, reported or found by a search does not change what it is
    assert spec(device="cpu").run_id == spec(device="cuda").run_id == spec(plugins=("p.py",)).run_id
    assert spec().run_id == spec(select="oracle").run_id == spec(trial=3, family_id="f").run_id


def test_config_id_ignores_only_the_seed():
    assert spec(seed=0).spec.config_id == spec(seed=5).spec.config_id
    assert spec().spec.config_id != spec(hparams={"x": 1}).spec.config_id


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = spec().directory(tmp_path) / "result.json"
    write_json_atomic(path, ok_result(spec(), 40.0))
    write_json_atomic(path, ok_result(spec(), 45.0))
    assert json.loads(path.read_text())["history"][0]["test"]["wga"] == 45.0
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    assert read_result(path.parent)["history"][0]["test"]["wga"] == 45.0
    assert read_result(tmp_path / "nothing") is None


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_result_files_respect_the_umask(tmp_path, umask):
    """mkstemp makes 0600 files: results must be readable by whoever may read the folder (issue 13)."""
    code = (
        "import os, sys; os.umask(int(sys.argv[2])); from pathlib import Path; "
        "from benchmark.runs.store import write_json_atomic; write_json_atomic(Path(sys.argv[1]), {'a': 1})"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "r.json"), str(umask)], check=True)
    assert stat.S_IMODE(os.stat(tmp_path / "r.json").st_mode) == 0o666 & ~umask


def test_unreadable_and_old_results_are_skipped_with_a_warning(tmp_path):
    good = spec()
    store(tmp_path, good, ok_result(good))
    store(tmp_path, spec(seed=1), {"status": "ok", "schema": 1, "run_id": spec(seed=1).run_id})
    broken = spec(seed=2).directory(tmp_path)
    broken.mkdir(parents=True)
    (broken / "result.json").write_text('{"status": "ok", "te')
    warnings = []
    found = list(iter_results(tmp_path, warn=warnings.append))
    assert [r["run_id"] for r in found] == [good.run_id]
    assert len(warnings) == 2 and any("older version" in w for w in warnings)
    assert any(str(broken / "result.json") in w for w in warnings)
    assert read_result(broken)["status"] == "failed", "a damaged result counts as a failed run"


def without(payload: dict, key: str) -> dict:
    return {k: v for k, v in payload.items() if k != key}


def string_metric(payload: dict) -> dict:
    history = [{**payload["history"][0], "test": {**payload["history"][0]["test"], "wga": "high"}}]
    return {**payload, "history": history}


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda r: [], "not a JSON object but list"),
        (lambda r: None, "not a JSON object but NoneType"),
        (lambda r: "ok", "not a JSON object but str"),
        (lambda r: {}, "'schema' is missing"),
        (lambda r: without(r, "run_id"), "'run_id' is missing"),
        (lambda r: {**r, "seed": "0"}, "'seed' is missing or not a int"),
        (lambda r: {**r, "status": "done"}, "neither ok nor failed"),
        (lambda r: without(r, "history"), "'history' is missing"),
        (lambda r: {**r, "history": []}, "'history' is missing or empty"),
        (lambda r: {**r, "history": [{"epoch": 1}]}, "val is not a metrics object"),
        (string_metric, "test has a metric that is not a number"),
        (lambda r: {**r, "steps_per_s": "fast"}, "a cost field is not a number"),
    ],
)
def test_a_result_of_the_wrong_shape_is_one_corrupt_run_never_a_crash(tmp_path, damage, reason):
    good, bad = spec(), spec(seed=1)
    store(tmp_path, good, ok_result(good))
    store(tmp_path, bad, damage(ok_result(bad)))
    warnings = []
    assert [r["run_id"] for r in iter_results(tmp_path, warn=warnings.append)] == [good.run_id]
    assert len(warnings) == 1 and reason in warnings[0] and "corrupt" in warnings[0]
    read = read_result(bad.directory(tmp_path))
    assert read["status"] == "failed" and read["corrupt"] and reason in read["error"]


def test_a_copied_run_folder_counts_once_with_a_warning(tmp_path):
    runs = [spec(seed=s) for s in range(2)]
    for run in runs:
        store(tmp_path, run, ok_result(run))
    directory = runs[0].directory(tmp_path)
    shutil.copytree(directory, directory.with_name(directory.name + ".bak"))  # cp -r <id> <id>.bak
    shutil.copytree(directory, tmp_path / "digits-hetero" / "groupdro" / directory.name)  # the same run elsewhere
    warnings = []
    found = list(iter_results(tmp_path, warn=warnings.append))
    assert sorted(r["run_id"] for r in found) == sorted(r.run_id for r in runs)
    assert len(warnings) == 2
    assert any("a copy of run" in w and ".bak" in w for w in warnings)
    assert any("is already read from" in w for w in warnings)


def test_a_claim_is_exclusive_released_by_its_owner_and_taken_over_when_the_owner_is_gone(tmp_path):
    directory = tmp_path / "run"
    assert claim_run(directory) is None
    assert read_claim(directory / "claim")["pid"] == os.getpid()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        release_claim(directory)
        (directory / "claim").write_text(json.dumps({**read_claim_of(holder), "since": 0}))
        owner = claim_run(directory)
        assert owner is not None and owner["pid"] == holder.pid, "a live owner keeps its claim"
        release_claim(directory)
        assert (directory / "claim").exists(), "only the owner releases a claim"
    finally:
        holder.kill()
        holder.wait()
    assert claim_run(directory) is None, "a claim whose owner is gone is taken over"
    assert read_claim(directory / "claim")["pid"] == os.getpid()
    (directory / "claim").write_text("")  # an owner that died while writing its claim
    assert claim_run(directory) is None
    assert [p.name for p in directory.iterdir()] == ["claim"], "no temp or stale files are left"


def read_claim_of(process: subprocess.Popen) -> dict:
    import socket

    return {"host": socket.gethostname(), "pid": process.pid}
