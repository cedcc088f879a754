"""``bench profile``: rates from the trainer's own timing of its epochs, the bare loop, ratios, the CSV; and the
GPU switches (bfloat16 autocast, torch.compile) kept honest on CPU."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import BUILTIN_METHODS, bench, toy_dataset

from benchmark.profiling.profile import CSV_COLUMNS, epoch_rate, profile
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.sweeps.plan import plan
from benchmark.training.engine import train


def test_profile_rows_ratios_and_stage_rates():
    small = dict(dataset="digits-hetero", seeds=[0], sets=["data.n_mnist1d=600"])
    specs = plan(methods=["erm", "jtt", "dro-lt"], epochs=4, **small)
    rows = {row["method"]: row for row in profile(specs, fresh_process=False)}
    assert list(rows) == ["bare", "erm", "jtt", "dro-lt"]
    for row in rows.values():
        assert row["steps_per_s"] > 0 and row["samples_per_s"] == pytest.approx(100 * row["steps_per_s"])
        assert row["ratio_to_bare"] == pytest.approx(row["steps_per_s"] / rows["bare"]["steps_per_s"])
        assert row["peak_mem_mb"] > 0
    assert rows["erm"]["ratio_to_erm"] == pytest.approx(1.0)
    peak = rows["bare"]["peak_gflop_per_s"]
    assert peak > 0 and all(row["peak_gflop_per_s"] == peak for row in rows.values())
    for row in rows.values():  # the achieved rate is the step's FLOPs times steps/s, set against the peak
        assert row["step_mflop"] > 0 and row["gflop_per_s"] == pytest.approx(
            row["step_mflop"] * row["steps_per_s"] / 1e3
        )
        assert row["ratio_to_peak"] == pytest.approx(row["gflop_per_s"] / peak)
    assert rows["erm"]["step_mflop"] == rows["bare"]["step_mflop"], "the same model on the same first batch"
    assert rows["bare"]["ratio_to_bare"] == pytest.approx(1.0)
    assert [part.split(":")[0] for part in rows["jtt"]["stages"].split()] == ["identify", "upweighted"]
    assert len(rows["dro-lt"]["stages"].split()) == 3
    # a multi-stage rate is the steps-weighted harmonic mean of its stage rates
    rates = [float(part.split(":")[1]) for part in rows["dro-lt"]["stages"].split()]
    assert min(rates) * 0.99 <= rows["dro-lt"]["steps_per_s"] <= max(rates) * 1.01


def test_profile_trains_with_the_runs_threads_and_deterministic_setting(monkeypatch):
    import benchmark.profiling.profile as profiling

    seen, real = [], profiling.train
    monkeypatch.setattr(profiling, "train", lambda *args: seen.append(args[3]) or real(*args))
    runs = plan(methods=["erm"], dataset="digits-hetero", seeds=[0], epochs=1, sets=["data.n_mnist1d=600"], threads=2,
                deterministic=True)  # fmt: skip
    profile(runs, fresh_process=False)
    assert seen == [dataclasses.replace(runs[0].execution, count_flops=True)]
    assert seen[0].deterministic and seen[0].threads == 2


@pytest.mark.slow  # an end-to-end check kept out of the quick suite
def test_profile_cli_writes_the_csv(tmp_path):
    csv = tmp_path / "profile.csv"
    args = ["profile", "--methods", "erm", "--epochs", "2", "--deterministic"]
    proc = bench(*args, "--set", "data.n_mnist1d=600", "--batch-size", "50", "--csv", str(csv))
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(csv)
    assert list(table.columns) == CSV_COLUMNS and list(table["method"]) == ["bare", "erm"]
    np.testing.assert_allclose(table["samples_per_s"], 50 * table["steps_per_s"], rtol=1e-3)
    assert table.loc[1, "ratio_to_erm"] == pytest.approx(1.0) and math.isnan(table.loc[0, "stage_setup_ms"])
    assert "×bare" in proc.stdout and "×erm" in proc.stdout


def test_rounds_run_round_robin_and_take_each_ratio_within_its_round(monkeypatch):
    import benchmark.profiling.profile as profiling

    speed = iter([1.0] * 3 + [0.5] * 3 + [0.9] * 3)  # the machine slows down in round 2
    jtt_to_erm = iter([0.6, 0.8, 0.7])
    calls = []

    def fake_child(run, with_breakdown=False):
        calls.append((run.spec.method, with_breakdown))
        f = next(speed)
        rate = {"bare": 100 * f, "erm": 90 * f}.get(run.spec.method) or 90 * f * next(jtt_to_erm)
        row = {"method": run.spec.method, "steps_per_s": rate, "step_mflop": 2.0, "gflop_per_s": 2e-3 * rate}
        row |= {"peak_mem_mb": 10.0, "stage_rates": {"a": rate, "b": 2 * rate}}
        return row | ({"peak_gflop_per_s": 50.0 * f} if run.spec.method == "bare" else {"stage_setup_ms": f})

    monkeypatch.setattr(profiling, "_profile_in_child", fake_child)
    runs = plan(methods=["erm", "jtt"], dataset="digits-hetero", seeds=[0], epochs=1, sets=["data.n_mnist1d=600"])
    rows = {row["method"]: row for row in profile(runs, fresh_process=False, with_breakdown=True, rounds=3)}
    round_robin = [("bare", False), ("erm", False), ("jtt", False)]
    assert calls == [("bare", True), *round_robin[1:], *round_robin * 2], "the breakdown in the first round only"
    jtt = rows["jtt"]
    # the median of the rounds' own ratios (0.6, 0.8, 0.7), not the ratio of the medians (54 / 81)
    assert jtt["ratio_to_erm"] == pytest.approx(0.7) and jtt["rounds"] == 3
    assert (jtt["ratio_to_erm_min"], jtt["ratio_to_erm_max"]) == pytest.approx((0.6, 0.8))
    assert jtt["steps_per_s"] == pytest.approx(54.0) and jtt["samples_per_s"] == pytest.approx(5400.0)
    assert jtt["stages"] == "a:54.0 b:108.0" and jtt["stage_setup_ms"] == pytest.approx(0.9)
    assert rows["erm"]["ratio_to_erm"] == 1.0 and rows["erm"]["ratio_to_bare"] == pytest.approx(0.9)
    assert rows["bare"]["peak_gflop_per_s"] == jtt["peak_gflop_per_s"] == pytest.approx(45.0)
    assert rows["bare"]["stage_setup_ms"] is None and "stage_rates" not in jtt


def test_a_stage_rate_is_the_median_epoch_without_the_warm_up_epoch():
    assert epoch_rate(10, [5.0, 1.0, 2.0, 0.5]) == 10 / 1.0  # the 5 s first epoch is left out
    assert epoch_rate(10, [2.0]) == 5.0  # a one-epoch stage keeps its only epoch


def job(method: str, **train) -> RunSpec:
    return RunSpec("toy", {}, method, {}, 0, TrainConfig(epochs=4, batch_size=8, **train))


@pytest.mark.parametrize("method", BUILTIN_METHODS)
def test_bfloat16_autocast_trains_every_method(method):
    records = []
    result = train(job(method, amp=True), toy_dataset(), records.append)
    assert all(math.isfinite(r["train_loss"]) for r in records)
    assert all(r["test"]["acc"] is not None for r in result["history"])


@pytest.mark.parametrize(
    "backend, rel",
    [
        ("aot_eager", 1e-5),  # graph capture without code generation: the eager kernels
        # inductor's generated kernels on CPU (CUDA graphs apply only on a GPU); ~1 min of compilation
        pytest.param("reduce-overhead", 1e-4, marks=pytest.mark.slow),
    ],
)
def test_compiled_encoders_train_like_eager_ones(backend, rel):
    eager, compiled = [], []
    train(job("erm"), toy_dataset(), eager.append)
    torch._dynamo.reset()
    train(job("erm", compile=backend), toy_dataset(), compiled.append)
    assert [r["train_loss"] for r in compiled] == pytest.approx([r["train_loss"] for r in eager], rel=rel)


def test_reduce_overhead_compiles_each_encoder_with_cuda_graphs_mode(monkeypatch):
    from benchmark.training.setup import seeded_model

    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **how: calls.append(how) or module)
    model = seeded_model(toy_dataset(), 0, "reduce-overhead")
    assert calls == [{"dynamic": True, "backend": "inductor", "mode": "reduce-overhead"}] * len(model.encoders)
    calls.clear()
    seeded_model(toy_dataset(), 0, "aot_eager")
    assert calls == [{"dynamic": True, "backend": "aot_eager"}] * len(model.encoders)


def test_the_breakdown_sorts_operators_by_kind_and_accounts_for_the_step_time():
    from benchmark.profiling.breakdown import OUTSIDE, breakdown, op_kind

    assert op_kind("aten::convolution_backward") == op_kind("aten::mkldnn_convolution") == "convolution"
    assert op_kind("aten::addmm") == op_kind("aten::bmm") == "matrix product"
    assert op_kind("aten::max_pool2d_with_indices") == "pooling" and op_kind("aten::_fused_adam_") == "optimizer"
    assert op_kind("aten::to") == op_kind("aten::_to_copy") == "copy, index and layout"
    assert op_kind("aten::topk") == op_kind("aten::sigmoid") == "elementwise and other"
    weight = torch.randn(64, 64, requires_grad=True)
    optimizer = torch.optim.Adam([weight])

    def step(x):
        loss = (x @ weight).relu().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    rows = {row["kind"]: row for row in breakdown(step, [torch.randn(32, 64)] * 4, torch.device("cpu"), 100.0)}
    assert {"matrix product", "optimizer", OUTSIDE} <= set(rows)
    assert sum(row["share"] for row in rows.values()) == pytest.approx(1.0)
    # forward x @ w and the backward's product for w's gradient (x is not a leaf): 2 × 2·32·64·64 FLOPs
    assert rows["matrix product"]["mflop_per_step"] == pytest.approx(2 * 2 * 32 * 64 * 64 / 1e6)
    gflops = rows["matrix product"]["mflop_per_step"] / rows["matrix product"]["ms_per_step"]
    assert rows["matrix product"]["gflop_per_s"] == pytest.approx(gflops)
    assert rows["matrix product"]["ratio_to_peak"] == pytest.approx(gflops / 100.0)
    assert rows["optimizer"]["mflop_per_step"] is None
