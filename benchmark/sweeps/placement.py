"""Where and how many at once: a sweep's runs cut into tasks (stacks of runs that may train together), how many
tasks train at once, and the devices they spread over."""

from __future__ import annotations

import os

from benchmark.runs.spec import Run
from benchmark.sweeps.options import SweepConfig

MAX_DEFAULT_WORKERS = 8


def stack_tasks(pending: list[Run], size: int) -> list[list[Run]]:
    """``pending`` cut into tasks of up to ``size`` runs that may train stacked: the same dataset and training
    settings but lr and weight decay (:func:`~benchmark.training.stacking.stack_key`), the same execution, and methods
    that allow it; in plan order (a group's runs in the task of its first run). ``size`` 1: one task per run."""
    from benchmark.core.registry import METHODS
    from benchmark.training.stacking import stack_key

    if size <= 1:
        return [[run] for run in pending]
    groups: dict[tuple, list[list[Run]]] = {}
    tasks: list[list[Run]] = []
    for run in pending:
        if not METHODS.get(run.spec.method).stackable:
            tasks.append([run])
            continue
        chunks = groups.setdefault((stack_key(run.spec), run.execution), [])
        if not chunks or len(chunks[-1]) == size:
            chunks.append([])
            tasks.append(chunks[-1])
        chunks[-1].append(run)
    return tasks


def default_workers(pending: list[Run]) -> int:
    """Parallel local runs when ``--workers`` is not given: on CPU one per ``threads`` cores (at most
    ``MAX_DEFAULT_WORKERS``), on CUDA one per GPU."""
    if not pending:
        return 1
    threads = pending[0].execution.threads
    return cuda_devices(pending) or max(1, min(MAX_DEFAULT_WORKERS, (os.cpu_count() or 1) // threads))


def parallel_runs(pending: list[Run], config: SweepConfig) -> int:
    """How many of ``pending`` train at once: locally ``--workers-per-device`` × the GPUs (the CPU counting as one
    device), else ``--workers``, else :func:`default_workers`, never more than the runs; elsewhere ``--workers``
    (or 1: the cluster decides)."""
    if config.launcher != "local":
        return config.workers or 1
    tasks = len(stack_tasks(pending, config.stack))
    if config.workers_per_device:
        return max(min(config.workers_per_device * max(cuda_devices(pending), 1), tasks), 1)
    return max(min(config.workers or default_workers(pending), tasks), 1)


def device_of(pending: list[Run]):
    """The device the runs train on (the first CUDA device when there are several)."""
    from benchmark.training.devices import resolve_device

    return resolve_device(pending[0].execution.device)


def cuda_devices(pending: list[Run]) -> int:
    """How many CUDA devices the runs can spread over (0 when they train on CPU)."""
    import torch

    return torch.cuda.device_count() if device_of(pending).type == "cuda" else 0
