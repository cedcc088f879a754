"""``bench profile``: the training speed of each method through the trainer, against a bare PyTorch loop.

Each method is profiled in its own fresh process (so that its peak memory is its own): it walks through its
stages like a run does, times the trainer's own step function (:func:`benchmark.trainer.train_steps`) over
pre-drawn batches after a warm-up, and times its per-stage and per-epoch hooks separately. The bare loop is
the same model, batches and optimiser with plain cross-entropy and nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.data import build_dataset
from benchmark.data.batches import SAMPLERS, BatchStream
from benchmark.data.images import prefetched
from benchmark.plugins import load_plugins
from benchmark.runs import Run
from benchmark.trainer import (
    build_method,
    make_optimizer,
    peak_memory_mb,
    resolve_device,
    run_settings,
    sampler_name,
    seeded_model,
    start_stage,
    synchronize,
    train_steps,
)

BARE = "bare"
CSV_COLUMNS = [
    "method",
    "steps_per_s",
    "samples_per_s",
    "ratio_to_bare",
    "ratio_to_erm",
    "peak_mem_mb",
    "stage_start_ms",
    "epoch_start_ms",
    "stages",
]


@dataclass(frozen=True)
class ProfileSettings:
    """``steps`` timed steps per stage and repeat, after ``warmup`` untimed ones; the median over ``repeats``."""

    steps: int = 100
    warmup: int = 10
    repeats: int = 3


def timed(device: torch.device, function, *args) -> tuple[float, object]:
    """(seconds, result) of ``function(*args)``, synchronising the device before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = function(*args)
    synchronize(device)
    return time.perf_counter() - start, result


def median_steps_per_s(device: torch.device, run_steps, batches: list, settings: ProfileSettings) -> float:
    """Median over repeats of ``steps / seconds`` of ``run_steps`` over the batches after the warm-up ones."""
    run_steps(batches[: settings.warmup])
    rates = []
    for _ in range(settings.repeats):
        seconds, _ = timed(device, run_steps, batches[settings.warmup :])
        rates.append(settings.steps / seconds)
    return statistics.median(rates)


def profile_method(run: Run, settings: ProfileSettings) -> dict:
    """Steps/s of the run's method (stages weighted by their share of a run's steps), its per-stage rates and
    the time of its stage and epoch hooks, in this process."""
    spec = run.spec
    device = resolve_device(run.execution.device)
    data = build_dataset(spec.dataset, spec.data_options, run.execution.data_root).to(device)
    rng = np.random.default_rng([spec.seed, 0xBA7C])
    method = build_method(spec, data)
    make_optimizer(spec.train, [torch.zeros(1, device=device, requires_grad=True)])  # one-off import (~2 s), untimed
    stage_seconds, epoch_seconds, rates, weights, epoch = 0.0, [], {}, {}, 0
    for stage in method.stages():
        seconds, (_, optimizer, sampler) = timed(device, start_stage, method, stage, data, spec)
        stage_seconds += seconds
        method.train()
        for _ in range(settings.repeats):
            epoch += 1
            epoch_seconds.append(timed(device, method.on_epoch_start, epoch, data)[0])
        batches = BatchStream(sampler, rng).take(settings.warmup + settings.steps)

        run_steps = functools.partial(train_steps, method, data, optimizer, config=spec.train, first_step=0)
        rates[stage.name] = median_steps_per_s(device, run_steps, batches, settings)
        weights[stage.name] = stage.epochs  # every stage epoch is the same number of steps
    total = sum(weights.values())
    return {
        "method": spec.method,
        "steps_per_s": total / sum(weights[name] / rate for name, rate in rates.items()),
        "stage_start_ms": 1000 * stage_seconds,
        "epoch_start_ms": 1000 * statistics.median(epoch_seconds),
        "stages": " ".join(f"{name}:{rate:.1f}" for name, rate in rates.items()),
        "peak_mem_mb": peak_memory_mb(device)[0],
    }


def profile_bare(run: Run, settings: ProfileSettings) -> dict:
    """Steps/s of a bare loop: the same model, ERM's batches and optimiser, cross-entropy, nothing else."""
    spec = run.spec
    device = resolve_device(run.execution.device)
    data = build_dataset(spec.dataset, spec.data_options, run.execution.data_root).to(device)
    model = seeded_model(data, spec.seed, spec.train.compile, spec.train.latent)
    optimizer = make_optimizer(spec.train, list(model.parameters()))
    sampler = SAMPLERS[sampler_name(spec.train, False)](data, data.indices_cpu("train"), spec.train.batch_size)
    batches = BatchStream(sampler, np.random.default_rng([spec.seed, 0xBA7C])).take(settings.warmup + settings.steps)

    def run_steps(part: list) -> None:
        for batch in prefetched(data, part):
            loss = F.cross_entropy(model(data, batch), batch.y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    rate = median_steps_per_s(device, run_steps, batches, settings)
    return {
        "method": BARE,
        "steps_per_s": rate,
        "peak_mem_mb": peak_memory_mb(device)[0],
        "stages": f"train:{rate:.1f}",
    }


def _profile_in_child(run: Run, settings: ProfileSettings) -> dict:
    load_plugins(run.execution.plugins)
    with run_settings(run.execution):  # the run's threads and deterministic algorithms
        return profile_bare(run, settings) if run.spec.method == BARE else profile_method(run, settings)


def profile(runs: list[Run], settings: ProfileSettings, fresh_process: bool = True) -> list[dict]:
    """One row per run plus the bare loop (first), with samples/s and the ratios to the bare loop and to ERM.

    ``fresh_process``: profile each in its own spawned process (its own peak memory); otherwise in this one.
    """
    bare = dataclasses.replace(runs[0], spec=dataclasses.replace(runs[0].spec, method=BARE, hparams={}))
    jobs = [bare, *runs]
    if fresh_process:
        context = multiprocessing.get_context("spawn")
        rows = []
        for job in jobs:
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                rows.append(pool.submit(_profile_in_child, job, settings).result())
    else:
        rows = [_profile_in_child(job, settings) for job in jobs]
    bare = rows[0]["steps_per_s"]
    erm = next((row["steps_per_s"] for row in rows if row["method"] == "erm"), None)
    for row, job in zip(rows, jobs):
        row["samples_per_s"] = row["steps_per_s"] * job.spec.train.batch_size
        row["ratio_to_bare"] = row["steps_per_s"] / bare
        row["ratio_to_erm"] = row["steps_per_s"] / erm if erm else None
    return rows
