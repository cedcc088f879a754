"""The Python API as a notebook calls it: load_dataset, ds.split, run, leaderboard, evaluate, BenchError; and the
README's notebook block, run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import bench_in_process, needs_torchvision
from test_data_real_images import fake_waterbirds

import benchmark as bm
from benchmark.core.settings import DEFAULT_DATASET

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"data.n_mnist1d": 600}


@pytest.fixture(scope="module")
def ds():
    return bm.load_dataset("digits-hetero", seed=0, n_mnist1d=600)


def test_load_dataset_takes_options_as_keywords_and_checks_them(ds):
    assert ds.name == "digits-hetero" and len(ds.split("train")) == len(ds.indices_cpu("train"))
    with pytest.raises(bm.BenchError, match="unknown option 'n_sequences' of dataset digits-hetero; known: seed"):
        bm.load_dataset("digits-hetero", n_sequences=5)
    with pytest.raises(bm.BenchError, match=r"bad value for data.rotation: inf \(must be a finite number\)"):
        bm.load_dataset("digits-hetero", rotation=float("inf"))
    with pytest.raises(bm.BenchError, match="dataset waterbirds reads files: give data_root"):
        bm.load_dataset("waterbirds")
    with pytest.raises(bm.BenchError, match="unknown dataset 'nosuch'"):
        bm.load_dataset("nosuch")


def test_a_split_is_a_torch_dataset_in_sample_order(ds):
    test = ds.split("test")
    assert isinstance(test, torch.utils.data.Dataset)
    index = ds.indices_cpu("test")
    assert [test[i]["index"] for i in range(len(test))] == index.tolist()
    last = test[len(test) - 1]
    space = ds.spaces[int(ds.space[last["index"]])]
    assert last["space"] == space.name and torch.equal(last["x"], space.x[int(ds.row[last["index"]])])
    assert (last["y"], last["g"], last["a"]) == tuple(int(t[last["index"]]) for t in (ds.y, ds.g, ds.a))
    with pytest.raises(bm.BenchError, match="unknown split 'dev'"):
        ds.split("dev")


@needs_torchvision
def test_a_split_of_images_on_disk_loads_each_image(tmp_path):
    fake_waterbirds(tmp_path)
    images = bm.load_dataset("waterbirds", data_root=str(tmp_path), image_size=16, workers=0, encoder="cnn")
    item = images.split("train")[0]
    assert item["x"].shape == (3, 16, 16) and item["x"].dtype == torch.float32


def test_evaluate_scores_any_predictions_against_a_float64_count(ds):
    rng = np.random.default_rng(0)
    index = ds.indices_cpu("test")
    predictions = rng.integers(0, ds.num_classes, len(index))
    metrics = bm.evaluate(ds, "test", predictions)
    y, g = ds.y.numpy()[index], ds.g.numpy()[index]
    expected = {name: 100.0 * np.mean(predictions[g == k] == y[g == k]) for k, name in enumerate(ds.group_names)}
    assert metrics["groups"] == pytest.approx(expected)
    assert metrics["wga"] == pytest.approx(min(expected.values()))
    assert metrics["acc"] == pytest.approx(100.0 * np.mean(predictions == y))
    assert bm.evaluate(ds, "test", torch.as_tensor(y))["wga"] == 100.0
    with pytest.raises(bm.BenchError, match="3 predictions for the"):
        bm.evaluate(ds, "test", [0, 1, 2])
    with pytest.raises(bm.BenchError, match="integer class indices"):
        bm.evaluate(ds, "test", np.zeros(len(index)))


def test_run_returns_one_row_per_run_as_on_disk_and_resumes(tmp_path):
    out = tmp_path / "results"
    args = dict(methods=["erm", "groupdro"], dataset="digits-hetero", seeds=[0, 1], epochs=2, sets=SMALL, out=out,
                workers=1)  # fmt: skip
    runs = bm.run(**args)
    assert isinstance(runs, pd.DataFrame) and len(runs) == 4
    assert set(runs["status"]) == {"ok"} and set(runs["method"]) == {"erm", "groupdro"}
    for row in runs.itertuples():
        stored = json.loads((out / "digits-hetero" / row.method / row.run_id / "result.json").read_text())
        assert row.test_wga == stored["test"]["wga"] and row.seed == stored["seed"]
    again = bm.run(**args)
    pd.testing.assert_frame_equal(again, runs)
    board = bm.leaderboard(out, dataset="digits-hetero")
    written = pd.read_csv(out / "digits-hetero" / "leaderboard.csv")
    assert board["method"].tolist() == written["method"].tolist()
    assert np.allclose(board["wga_mean"], written["wga_mean"], atol=1e-4)


@needs_torchvision
def test_a_saved_model_loads_back_and_gives_the_runs_test_metrics(tmp_path):
    """--save-model keeps the model of the selected epoch: for a one-stage method, a method that retrains a
    fresh model (jtt) and one whose head is frozen (nc-frozen)."""
    out = tmp_path / "results"
    kept = dict(dataset="digits-hetero", save_model=True, workers=1)
    runs = bm.run(methods=["erm", "jtt", "nc-frozen"], seeds=[0], epochs=2, sets=SMALL, out=out, **kept)
    assert set(runs["status"]) == {"ok"}
    cost = pd.read_csv(out / "digits-hetero" / "cost.csv")
    assert (cost["train_cpu_s_mean"] > 0).all() and (cost["parallel_runs_max"] == 1).all()
    for row in runs.itertuples():
        folder = out / "digits-hetero" / row.method / row.run_id
        stored = json.loads((folder / "result.json").read_text())
        assert stored["model_file"] == "model.pt" and (folder / "model.pt").is_file()
        method, data = bm.load_model(folder)
        scored = bm.evaluate(data, "test", bm.predict(method, data, "test"))
        assert {k: scored[k] for k in ("wga", "acc", "groups")} == {
            k: stored["test"][k] for k in ("wga", "acc", "groups")
        }
        environment_keys = {"python", "packages", "git_commit", "host", "cuda", "cpu", "cpu_capability"}
        assert set(stored["environment"]) >= environment_keys
        assert stored["environment"]["packages"]["torch"] == torch.__version__.split("+")[0]
        assert stored["train_cpu_s"] > 0 and stored["parallel_runs"] == 1
    plain = bm.run(methods=["erm"], dataset="digits-hetero", seeds=[1], epochs=1, sets=SMALL, out=tmp_path / "plain")
    with pytest.raises(bm.BenchError, match="kept no model: train it with --save-model"):
        bm.load_model(tmp_path / "plain" / "digits-hetero" / "erm" / plain["run_id"][0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(select="best"), "bad --select 'best'"),
        (dict(seeds=[0, -1]), "seeds must be integers in"),
        (dict(seeds=[]), "--seeds is empty"),
        (dict(sets={"train.lr": float("inf")}), "bad value for train.lr: inf"),
        (dict(methods=["nosuch"]), "unknown method 'nosuch'"),
    ],
)
def test_api_errors_are_the_clis_one_line_bench_errors(tmp_path, kwargs, message):
    out = tmp_path / "results"
    with pytest.raises(bm.BenchError, match=re.escape(message)):
        bm.run(**{"methods": ["erm"], "epochs": 1, "sets": SMALL, "out": out, **kwargs})
    assert not out.exists()


def test_the_cli_is_a_shell_over_the_api(tmp_path):
    """bench run and bm.run train the same runs, on the same default dataset: the CLI's results folder is reused by
    the API without training."""
    out = tmp_path / "results"
    cli = bench_in_process("run", "--methods", "erm", "--seeds", "0", "--epochs", "2", "--workers", "1",
                           "--set", "data.n_mnist1d=600", "--out", str(out))  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    runs = bm.run(methods=["erm"], seeds=[0], epochs=2, sets=SMALL, out=out, workers=1)
    assert runs["run_id"].tolist() == [p.name for p in (out / DEFAULT_DATASET / "erm").iterdir()]


def test_the_readme_notebook_block_runs_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## In a notebook", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "100.0" in printed and "groupdro" in printed
    assert (tmp_path / "results" / "digits-hetero" / "leaderboard.csv").is_file()


def test_every_api_name_stays_the_function_whatever_was_imported_before():
    """A submodule of the same name must never shadow an API function (``bm.sweep`` after ``import
    benchmark.<x>.sweep``, say): in a fresh interpreter, every module of the package is imported, each API
    function is called with a bad argument (its own one-line error, not ``'module' object is not callable``), and
    the plugin-facing names resolve."""
    code = """
import importlib, pkgutil, sys
import benchmark as bm
for info in pkgutil.walk_packages(bm.__path__, "benchmark."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
calls = {"load_dataset": ("nosuch",), "run": (), "sweep": (), "leaderboard": ("/nonexistent",),
         "evaluate": (None, "nosplit", []), "load_model": ("/nonexistent",), "predict": (None, None, "nosplit")}
kwargs = {"run": {"methods": ["nosuch"], "report": False}, "sweep": {"methods": ["nosuch"]}}
for name in bm.API:
    function = getattr(bm, name)
    assert callable(function) and function.__module__ == "benchmark.api", name
    try:
        function(*calls[name], **kwargs.get(name, {}))
    except bm.BenchError:
        pass
for name in bm.PLUGIN:
    assert isinstance(getattr(bm, name), type), name
print("ok")
"""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_every_sweep_option_is_a_documented_keyword_of_run_and_sweep_and_a_flag_of_bench_run():
    """The one table of sweep options makes bm.run's and bm.sweep's keyword arguments (with their defaults and
    documentation) and bench run's flags; an unknown keyword is refused like any Python function's."""
    import inspect

    from benchmark.sweeps.options import OPTIONS, REPORT

    for function, extra in ((bm.run, {"report": REPORT.default, "listener": None}), (bm.sweep, {"listener": None})):
        params = inspect.signature(function).parameters
        assert {name: p.default for name, p in params.items()} == {
            **{name: option.default for name, option in OPTIONS.items()},
            **extra,
        }
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
        assert all(f"    {name}: {option.help[:20]}" in function.__doc__ for name, option in OPTIONS.items())
    shown = bench_in_process("run", "--help").stdout
    assert all(option.flag in shown for option in [*OPTIONS.values(), REPORT])
    with pytest.raises(TypeError, match="unknown sweep option 'seed'"):
        bm.sweep(methods=["erm"], seed=1)
