"""Run ids and atomic result files."""

from __future__ import annotations

import json

from benchmark.config import RunSpec, TrainConfig
from benchmark.store import iter_results, read_result, write_json_atomic


def spec(**changes) -> RunSpec:
    base = dict(
        dataset="digits-hetero", data_options={"seed": 0}, method="erm", hparams={}, seed=0, train=TrainConfig()
    )
    return RunSpec(**{**base, **changes})


def test_run_id_is_stable_and_depends_on_what_determines_the_run():
    assert spec().run_id == spec().run_id
    assert len(spec().run_id) == 12
    changed = [
        spec(seed=1),
        spec(hparams={"x": 1}),
        spec(train=TrainConfig(lr=0.1)),
        spec(data_options={"seed": 1}),
        spec(method="groupdro"),
    ]
    assert len({s.run_id for s in changed} | {spec().run_id}) == len(changed) + 1
    # how a run is executed, reported or found by a search does not change what it is
    assert spec(device="cpu").run_id == spec(device="cuda").run_id == spec(plugins=("p.py",)).run_id
    assert spec().run_id == spec(select="oracle").run_id == spec(trial=3, family_id="f").run_id


def test_config_id_ignores_only_the_seed():
    assert spec(seed=0).config_id == spec(seed=5).config_id
    assert spec().config_id != spec(hparams={"x": 1}).config_id


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "run" / "result.json"
    write_json_atomic(path, {"status": "ok", "x": 1})
    write_json_atomic(path, {"status": "ok", "x": 2})
    assert json.loads(path.read_text())["x"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    assert read_result(path.parent)["x"] == 2
    assert read_result(tmp_path / "nothing") is None


def test_unreadable_and_old_results_are_skipped_with_a_warning(tmp_path):
    good = spec()
    write_json_atomic(good.directory(tmp_path) / "result.json", {**good.header(), "status": "ok"})
    old = spec(seed=1)
    write_json_atomic(old.directory(tmp_path) / "result.json", {"status": "ok", "schema": 1})
    broken = spec(seed=2).directory(tmp_path)
    broken.mkdir(parents=True)
    (broken / "result.json").write_text('{"status": "ok", "te')
    warnings = []
    found = list(iter_results(tmp_path, warn=warnings.append))
    assert [r["run_id"] for r in found] == [good.run_id]
    assert len(warnings) == 2 and any("older version" in w for w in warnings)
    assert any(str(broken / "result.json") in w for w in warnings)
    assert read_result(broken)["status"] == "failed", "a damaged result counts as a failed run"
