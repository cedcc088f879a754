"""``--workers-per-device N``: several runs share one device, after a check that N of them fit in its memory.

The models here use a sliver of a GPU, so one run per GPU leaves most of it idle. Before the pool starts, one run
of each method in the sweep trains a few steps of its first stage in a spawned process (the probe; one dataset
build), and the largest footprint is measured two ways: the device's free memory before the probe and while it
holds its memory (which counts a CUDA context too), and the probe's own peak (CUDA memory reserved by PyTorch's
allocator, or the process's peak resident set on CPU). The larger of the two, times N, must fit in the free
memory seen before the probe.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.runs.spec import Run

PROBE_STEPS = 3
HEADROOM = 0.9  # of the free memory the N runs may plan to use


def free_memory_mb(device) -> float:
    """Free memory of ``device``: CUDA's free device memory, or the system's available memory on CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] / 2**20
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise BenchError("cannot read the available memory (no MemAvailable in /proc/meminfo)")


def _probe(runs: list[Run], ready, release) -> None:
    """In a spawned process: train ``PROBE_STEPS`` steps of each run's first stage (its set-up, first epoch hook and
    steps as the engine takes them), report the peak, hold the memory until the parent has read the device's free
    memory."""
    import torch

    from benchmark.data import build_dataset
    from benchmark.plugins import load_plugins
    from benchmark.training.devices import peak_memory_mb, resolve_device
    from benchmark.training.engine import train_steps
    from benchmark.training.run_training import RunTraining

    first = runs[0]
    load_plugins(first.execution.plugins)
    device = resolve_device(first.execution.device)
    data = build_dataset(first.spec.dataset, first.spec.data_options, first.execution.data_root).to(device)
    for run in runs:  # the engine's own set-up and steps, cut short
        training = RunTraining(run.spec, data, on_eval=lambda record: None)
        optimizer = training.begin_stage()
        batches = training.begin_epoch()[:PROBE_STEPS]
        train_steps(training.method, data, optimizer, batches, run.spec.train, training.step)
        del training, optimizer
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        ready.put(torch.cuda.max_memory_reserved(device) / 2**20)
    else:
        ready.put(peak_memory_mb(device)[0])
    release.wait(timeout=60)


def run_footprint_mb(runs: list[Run], device) -> tuple[float, float]:
    """(the largest measured footprint of one of ``runs``, the device's free memory before the probe) in MB."""
    context = multiprocessing.get_context("spawn")
    ready, release = context.Queue(), context.Event()
    free_before = free_memory_mb(device)
    probe = context.Process(target=_probe, args=(runs, ready, release), name="bench-memory-probe")
    probe.start()
    try:
        own_peak = ready.get(timeout=600)
        free_during = free_memory_mb(device)
    except Exception as exc:  # the probe died before reporting (its own error is on stderr)
        raise BenchError(f"the memory probe failed (exit code {probe.exitcode}); its error is above") from exc
    finally:
        release.set()
        probe.join(timeout=60)
    return max(own_peak, free_before - free_during), free_before


def check_capacity(pending: list[Run], per_device: int, device, stack: int = 1) -> float:
    """Raise a BenchError unless ``per_device`` workers, each training up to ``stack`` runs together, fit in
    ``device``'s free memory at the largest footprint of one run among ``pending``'s methods; return that footprint
    (MB)."""
    one_per_method = list({run.spec.method: run for run in reversed(pending)}.values())
    footprint, free = run_footprint_mb(one_per_method, device)
    need = per_device * stack * footprint
    if need > HEADROOM * free:
        runs = per_device * stack
        with_stack = f" with --stack {stack}" if stack > 1 else ""
        raise BenchError(
            f"--workers-per-device {per_device}{with_stack}: {runs} runs need about {need:.0f} MB on {device} (the "
            f"largest of {len(one_per_method)} method(s) measured at {footprint:.0f} MB a run) but only "
            f"{free:.0f} MB are free; at most {max(int(HEADROOM * free // footprint), 0)} fit"
        )
    return footprint
