"""``bench profile``: the training speed of each method through the trainer itself, against a bare PyTorch loop.

Each method trains a short run (its spec's epoch budget) in its own fresh process (so that its peak memory is
its own) through :func:`benchmark.training.engine.train`, with the run's threads and deterministic setting. The trainer
times every epoch's training (the epoch hook, drawing the batches and the steps, without evaluation) and every
stage's setup (the stage hook: error sets, centroids, frozen heads; a fresh model; the optimiser); a stage's
rate is the median over its epochs of steps / training time, without its first epoch (warm-up) when it has
more than one. The bare loop is the same model, ERM's batches and optimiser with plain cross-entropy and
nothing else, timed per epoch the same way. FLOPs are counted (matrix products and convolutions, forward and
backward, :class:`~torch.utils.flop_counter.FlopCounterMode`) on one step in the untimed first epoch; the achieved
GFLOP/s are set against the machine's measured peak: a square matrix product (:data:`PEAK_SIZE`) in the same
dtype with the same threads, so the distance to the arithmetic limit is a printed ratio. With several rounds, every
job is profiled once per round, round-robin, and each ratio is taken within its round, so a machine that slows
down between rounds (a shared host) slows every method of that round alike; a row holds the medians over rounds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from benchmark.data import build_dataset
from benchmark.data.images import prefetched
from benchmark.plugins import load_plugins
from benchmark.profiling.breakdown import breakdown
from benchmark.runs.spec import Run
from benchmark.training.devices import peak_memory_mb, resolve_device, synchronize
from benchmark.training.engine import train
from benchmark.training.execution import run_settings
from benchmark.training.run_training import RunTraining
from benchmark.training.setup import make_optimizer

BARE = "bare"
CSV_COLUMNS = ["method", "steps_per_s", "samples_per_s", "ratio_to_bare", "ratio_to_erm", "peak_mem_mb"]
CSV_COLUMNS += ["step_mflop", "gflop_per_s", "ratio_to_peak", "peak_gflop_per_s", "stage_setup_ms", "stages"]
CSV_COLUMNS += ["ratio_to_erm_min", "ratio_to_erm_max", "rounds"]
MEDIANS = ["steps_per_s", "samples_per_s", "ratio_to_bare", "ratio_to_erm", "gflop_per_s", "ratio_to_peak"]
MEDIANS += ["peak_gflop_per_s", "peak_mem_mb", "stage_setup_ms"]  # the numbers a row's rounds differ in
PEAK_SIZE = 512  # the square matrix product whose rate is the machine's arithmetic peak here


def epoch_rate(steps: int, seconds: list[float]) -> float:
    """Median steps/s over a stage's epochs, without the first (warm-up) when there are several."""
    timed = seconds[1:] if len(seconds) > 1 else seconds
    return statistics.median(steps / s for s in timed)


def matmul_peak(device: torch.device, dtype: torch.dtype, size: int = PEAK_SIZE, repeats: int = 20) -> float:
    """GFLOP/s of a ``size`` × ``size`` matrix product in ``dtype`` on ``device`` with the current threads: the
    best of three timings of ``repeats`` products after a warm-up."""
    a, b = (torch.randn(size, size, device=device).to(dtype) for _ in range(2))
    a @ b
    best = float("inf")
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def profile_method(run: Run) -> dict:
    """Steps/s of the run's method (stages weighted by their share of the run's steps), its per-stage rates, the
    FLOPs of a step (counted on each stage's first step, in its warm-up epoch unless the stage has one epoch),
    the achieved GFLOP/s and the setup time of its stages, from one training run through the trainer here."""
    data = build_dataset(run.spec.dataset, run.spec.data_options, run.execution.data_root)
    records: list[dict] = []
    result = train(run.spec, data, records.append, dataclasses.replace(run.execution, count_flops=True))
    steps = result["steps"] // result["epochs"]
    rates = {
        stage["name"]: epoch_rate(steps, [r["train_s"] for r in records if r["stage"] == stage["name"]])
        for stage in result["stages"]
    }
    weights = {stage["name"]: stage["epochs"] for stage in result["stages"]}
    seconds = sum(weights[name] / rate for name, rate in rates.items())  # per epoch-weighted step
    flops = sum(stage["epochs"] * stage["step_flops"] for stage in result["stages"])
    return {
        "method": run.spec.method,
        "steps_per_s": sum(weights.values()) / seconds,
        "step_mflop": flops / sum(weights.values()) / 1e6,
        "gflop_per_s": flops / seconds / 1e9,
        "stage_setup_ms": 1000 * sum(stage["setup_time_s"] for stage in result["stages"]),
        "stage_rates": rates,
        "peak_mem_mb": result["peak_memory_mb"],
    }


def profile_bare(run: Run, with_breakdown: bool = False) -> dict:
    """Steps/s of a bare loop over the run's budget: the same model, ERM's batches and optimiser (ERM's set-up by the
    engine's :class:`~benchmark.training.run_training.RunTraining`), cross-entropy, nothing else; ``with_breakdown``
    adds where one more epoch's step time goes (:func:`breakdown`)."""
    spec = dataclasses.replace(run.spec, method="erm", hparams={})
    device = resolve_device(run.execution.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = build_dataset(spec.dataset, spec.data_options, run.execution.data_root).to(device)
    training = RunTraining(spec, data, on_eval=lambda record: None)
    model, optimizer, steps = training.method.model, training.begin_stage(), training.steps_per_epoch

    def step(batch) -> None:
        loss = F.cross_entropy(model(data, batch), batch.y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, counter = [], FlopCounterMode(display=False)
    for epoch in range(spec.train.epochs):
        start = time.perf_counter()
        for i, batch in enumerate(prefetched(data, training.begin_epoch())):
            with counter if epoch == i == 0 else contextlib.nullcontext():  # in the untimed warm-up epoch
                step(batch)
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    rate, flops = epoch_rate(steps, seconds), counter.get_total_flops()
    peak = matmul_peak(device, torch.bfloat16 if spec.train.amp else torch.float32)
    kinds = breakdown(step, list(prefetched(data, training.begin_epoch())), device, peak) if with_breakdown else None
    return {
        "method": BARE,
        "steps_per_s": rate,
        "step_mflop": flops / 1e6,
        "gflop_per_s": flops * rate / 1e9,
        "peak_gflop_per_s": peak,
        "peak_mem_mb": peak_memory_mb(device)[0],
        "stage_rates": {"train": rate},
        **({"breakdown": kinds} if with_breakdown else {}),
    }


def _profile_in_child(run: Run, with_breakdown: bool = False) -> dict:
    load_plugins(run.execution.plugins)
    param = torch.zeros(1, device=resolve_device(run.execution.device), requires_grad=True)
    make_optimizer(run.spec.train, [param])  # the fused optimiser's one-off import (~2 s), outside any stage's setup
    if run.spec.method != BARE:
        return profile_method(run)
    with run_settings(run.execution):  # the trainer sets them itself
        return profile_bare(run, with_breakdown)


def profile_round(jobs: list[Run], fresh_process: bool, with_breakdown: bool) -> list[dict]:
    """One row per job (the bare loop first), with samples/s and the ratios to the bare loop and to ERM. With
    ``fresh_process`` on CUDA, all jobs share one spawned process: CUDA's peak-memory counter is reset for each, so
    a process of its own buys nothing there but another CUDA start (seconds per job)."""
    if fresh_process:
        context = multiprocessing.get_context("spawn")
        shared = resolve_device(jobs[0].execution.device).type == "cuda"
        rows, pool = [], None
        try:
            for job in jobs:
                if pool is None or not shared:
                    if pool is not None:
                        pool.shutdown()
                    pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
                rows.append(pool.submit(_profile_in_child, job, with_breakdown and job is jobs[0]).result())
        finally:
            if pool is not None:
                pool.shutdown()
    else:
        rows = [_profile_in_child(job, with_breakdown and job is jobs[0]) for job in jobs]
    bare_rate, peak = rows[0]["steps_per_s"], rows[0]["peak_gflop_per_s"]
    erm = next((row["steps_per_s"] for row in rows if row["method"] == "erm"), None)
    for row, job in zip(rows, jobs):
        row["samples_per_s"] = row["steps_per_s"] * job.spec.train.batch_size
        row["ratio_to_bare"] = row["steps_per_s"] / bare_rate
        row["ratio_to_erm"] = row["steps_per_s"] / erm if erm else None
        row["peak_gflop_per_s"] = peak
        row["ratio_to_peak"] = row["gflop_per_s"] / peak
    return rows


def median_row(rounds: list[dict]) -> dict:
    """One job's rows over rounds as one: the median of each number in :data:`MEDIANS` and of each stage's rate,
    the ratio to ERM's smallest and largest, and the number of rounds; the rest (FLOPs, the breakdown) from the
    first round."""
    row = dict(rounds[0])
    for key in MEDIANS:
        values = [r[key] for r in rounds if r.get(key) is not None]
        row[key] = statistics.median(values) if values else None
    ratios = [r["ratio_to_erm"] for r in rounds if r["ratio_to_erm"] is not None]
    row["ratio_to_erm_min"], row["ratio_to_erm_max"] = (min(ratios), max(ratios)) if ratios else (None, None)
    rates = {name: statistics.median(r["stage_rates"][name] for r in rounds) for name in row.pop("stage_rates")}
    row["stages"] = " ".join(f"{name}:{rate:.1f}" for name, rate in rates.items())
    row["rounds"] = len(rounds)
    return row


def profile(runs: list[Run], fresh_process: bool = True, with_breakdown: bool = False, rounds: int = 1) -> list[dict]:
    """One row per run plus the bare loop (first), with samples/s and the ratios to the bare loop and to ERM.

    ``fresh_process``: profile each in its own spawned process (its own peak memory); otherwise in this one.
    ``with_breakdown``: the bare loop's row also has ``breakdown``, its step time by kind of operator (first round).
    ``rounds``: profile every job that many times, round-robin (the bare loop and each run, then again), each
    round's ratios within the round; each row holds the medians over rounds (:func:`median_row`).
    """
    bare = dataclasses.replace(runs[0], spec=dataclasses.replace(runs[0].spec, method=BARE, hparams={}))
    jobs = [bare, *runs]
    measured = [profile_round(jobs, fresh_process, with_breakdown and i == 0) for i in range(rounds)]
    return [median_row(list(job_rounds)) for job_rounds in zip(*measured)]
