"""Where runs execute: in this process, a local process pool, Ray tasks, or a SLURM array through submitit.

Every launcher calls the same single-run function (:func:`benchmark.sweeps.execute.execute_run`) and reports to a
:class:`~benchmark.sweeps.execute.Progress`. A run whose process dies (killed, out of memory, a lost node) is recorded
as failed with the reason, and the sweep goes on.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from benchmark.core.errors import BenchError, require
from benchmark.data import adopt_datasets, built_datasets
from benchmark.runs.events import Progress
from benchmark.runs.spec import Run
from benchmark.runs.state import record_crash
from benchmark.sweeps.capacity import check_capacity
from benchmark.sweeps.execute import execute_stack

LAUNCHERS = ("local", "ray", "slurm")
MAX_DEFAULT_WORKERS = 8
SLURM_CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class LaunchOptions:
    """How to spread runs: ``workers`` parallel runs (local: processes; ray: CPUs of a local instance; slurm:
    array parallelism) or, locally, ``workers_per_device`` processes on each device (each GPU, or the CPU) after a
    memory check (:func:`benchmark.sweeps.capacity.check_capacity`), Ray's cluster address, and the SLURM job settings.
    ``stack``: up to this many runs that may train together (:func:`stack_tasks`) make one task, trained in one
    process as one stacked model (:mod:`benchmark.training.stacking`); 1 trains each run alone."""

    workers: int | None = None
    workers_per_device: int | None = None
    ray_address: str | None = None
    slurm_partition: str | None = None
    slurm_time_min: int = 60
    slurm_gpus: int = 0
    slurm_cpus: int = 2
    slurm_cluster: str = "slurm"
    stack: int = 1


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


def parallel_runs(pending: list[Run], launcher: str, options: LaunchOptions) -> int:
    """How many of ``pending`` train at once: locally ``--workers-per-device`` × the GPUs (the CPU counting as one
    device), else ``--workers``, else :func:`default_workers`, never more than the runs; elsewhere ``--workers``
    (or 1: the cluster decides)."""
    if launcher != "local":
        return options.workers or 1
    tasks = len(stack_tasks(pending, options.stack))
    if options.workers_per_device:
        return max(min(options.workers_per_device * max(cuda_devices(pending), 1), tasks), 1)
    return max(min(options.workers or default_workers(pending), tasks), 1)


def check_launcher(launcher: str, options: LaunchOptions) -> None:
    """Fail before any training if the launcher cannot work here (extra not installed, no SLURM) or an option
    is out of range."""
    for name, value, low in (
        ("slurm-time", options.slurm_time_min, 1),
        ("slurm-cpus", options.slurm_cpus, 1),
        ("slurm-gpus", options.slurm_gpus, 0),
    ):
        if value < low:
            raise BenchError(f"bad --{name} {value}: must be >= {low}")
    if options.workers_per_device is not None and (options.workers is not None or launcher != "local"):
        raise BenchError("--workers-per-device is for the local launcher, instead of --workers")
    if launcher in ("ray", "slurm"):
        require({"ray": "ray", "slurm": "submitit"}[launcher], f"--launcher {launcher}", launcher)
    if launcher == "slurm" and options.slurm_cluster == "slurm" and shutil.which("srun") is None:
        raise BenchError("--launcher slurm: no SLURM here (srun not found); use --slurm-cluster local to test locally")


def launch(launcher: str, pending: list[Run], out: Path, progress: Progress, options: LaunchOptions) -> None:
    """Run ``pending`` with ``launcher``; results land in ``out`` and are reported to ``progress``."""
    if not pending:
        return
    tasks = stack_tasks(pending, options.stack)
    if launcher == "ray":
        run_ray(tasks, out, progress, options)
    elif launcher == "slurm":
        run_slurm(tasks, out, progress, options)
    else:
        workers = parallel_runs(pending, launcher, options)
        if options.workers_per_device and workers > 1:
            per_device = -(-workers // max(cuda_devices(pending), 1))
            check_capacity(pending, per_device, device_of(pending), max(len(task) for task in tasks))
        if workers > 1:
            run_pool(tasks, out, progress, workers)
        else:
            run_in_process(tasks, out, progress)


def run_in_process(tasks: list[list[Run]], out: Path, progress: Progress) -> None:
    """One task after another in this process (the dataset is built once and cached)."""
    for task in tasks:
        for run in task:
            progress.start(run)
        execute_stack(task, out, progress, lambda i, result, task=task: progress.finished(task[i], result, False))


class _QueueProgress(Progress):
    """Forwards a worker's evaluations to the parent's progress through the events queue (``index`` maps a run's
    id to its index in the sweep)."""

    def __init__(self, events, worker: int, index: dict[str, int]):
        self.events, self.worker, self.index = events, worker, index

    def evaluated(self, run: Run, record: dict) -> None:
        self.events.put(("evaluated", self.worker, self.index[run.run_id], record))


def _pool_worker(worker: int, tasks, events, gpu: int | None, parent: int) -> None:
    """A pool process: adopt the parent's built datasets (:func:`~benchmark.data.built_datasets`, the first
    message), then take (indices, runs, out) tasks until None arrives or the parent is gone; each run's result is
    reported as it ends."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)
    adopt_datasets(tasks.get())
    while os.getppid() == parent:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            return
        indices, runs, out = task
        progress = _QueueProgress(events, worker, {run.run_id: i for run, i in zip(runs, indices)})

        def finished(j: int, result: dict, at: list[int] = indices) -> None:
            events.put(("finished", worker, at[j], result))

        execute_stack(runs, Path(out), progress, finished)


def device_of(pending: list[Run]):
    """The device the runs train on (the first CUDA device when there are several)."""
    from benchmark.training.devices import resolve_device

    return resolve_device(pending[0].execution.device)


def cuda_devices(pending: list[Run]) -> int:
    """How many CUDA devices the runs can spread over (0 when they train on CPU)."""
    import torch

    return torch.cuda.device_count() if device_of(pending).type == "cuda" else 0


def run_pool(tasks: list[list[Run]], out: Path, progress: Progress, workers: int) -> None:
    """``workers`` spawned processes (each its own GPU when there are several), which take over the datasets this
    process built when checking the sweep (:func:`~benchmark.sweeps.execute.preflight`) instead of building them again,
    and train one task (one run, or a stack of runs) at a time. A worker that dies has the runs of its task that
    had not finished recorded as failed and is replaced; stopping the sweep (Ctrl-C, or SIGTERM, which
    :func:`benchmark.sweeps.sweep.run_sweep` turns into the same interrupt) stops the workers, leaving their runs to be
    redone."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pending = [run for task in tasks for run in task]
    gpus = cuda_devices(pending)
    starts = list(itertools.accumulate((len(task) for task in tasks), initial=0))
    todo = deque((list(range(starts[t], starts[t + 1])), task) for t, task in enumerate(tasks))
    procs: dict[int, tuple] = {}  # worker -> (process, task queue)
    busy: dict[int, set[int]] = {}  # worker -> indices of the runs of its task still training
    datasets = built_datasets()

    def start_worker(worker: int) -> None:
        queue_ = context.Queue()
        gpu = worker % gpus if gpus > 1 else None
        args = (worker, queue_, events, gpu, os.getpid())
        process = context.Process(target=_pool_worker, args=args, name=f"bench-worker-{worker}")
        process.start()
        queue_.put(datasets)  # by the queue's feeder thread: the next worker starts while this one imports
        procs[worker] = (process, queue_)

    def assign(worker: int) -> None:
        if todo:
            indices, task = todo.popleft()
            busy[worker] = set(indices)
            procs[worker][1].put((indices, task, str(out)))
            for run in task:
                progress.start(run)
        else:
            procs[worker][1].put(None)

    try:
        for worker in range(workers):
            start_worker(worker)
            assign(worker)
        while busy:
            try:
                kind, worker, index, payload = events.get(timeout=0.5)
                if index in busy.get(worker, ()):
                    if kind == "evaluated":
                        progress.evaluated(pending[index], payload)
                    else:
                        busy[worker].discard(index)
                        progress.finished(pending[index], payload, skipped=False)
                        if not busy[worker]:
                            del busy[worker]
                            assign(worker)
            except queue.Empty:
                pass
            for worker, indices in list(busy.items()):
                process = procs[worker][0]
                if not process.is_alive():
                    reason = f"worker process died (exit code {process.exitcode}) during the run"
                    del busy[worker]
                    for index in sorted(indices):
                        progress.finished(pending[index], record_crash(pending[index], out, reason), skipped=False)
                    start_worker(worker)
                    assign(worker)
    finally:
        for process, queue_ in procs.values():
            queue_.cancel_join_thread()  # exiting must not wait on a queue feeder an interrupt may have left blocked
            if process.is_alive():
                process.terminate()
        for process, _ in procs.values():
            process.join(timeout=10)


def run_ray(tasks: list[list[Run]], out: Path, progress: Progress, options: LaunchOptions) -> None:
    """Each task (a run, or a stack of runs) a Ray task (the run's threads as CPUs, 1 GPU on CUDA) on the cluster at
    ``ray_address`` or a local instance with ``workers`` CPUs (default: all cores). ``out`` must be a folder every
    node can write."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        cpus = None if options.ray_address else (options.workers or os.cpu_count())
        try:
            ray.init(address=options.ray_address, num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise BenchError(f"--ray-address {options.ray_address}: {exc}") from None
    try:
        first = tasks[0][0]
        gpus = 1 if cuda_devices([first]) else 0
        remote = ray.remote(num_cpus=first.execution.threads, num_gpus=gpus, max_retries=0)(execute_stack)
        refs = {}
        for task in tasks:
            refs[remote.remote(task, out.resolve())] = task
            for run in task:
                progress.start(run)
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            task = refs.pop(done[0])
            try:
                results = ray.get(done[0])
            except Exception as exc:  # the task's process died: recorded, the sweep goes on
                results = [record_crash(run, out, f"ray task failed: {type(exc).__name__}: {exc}") for run in task]
            for run, result in zip(task, results):
                progress.finished(run, result, skipped=False)
    finally:
        if started_here:
            ray.shutdown()


def run_slurm(tasks: list[list[Run]], out: Path, progress: Progress, options: LaunchOptions) -> None:
    """One SLURM array job through submitit, a task (a run, or a stack of runs) per array element
    (``slurm_cluster="local"``: submitit's local executor, for testing on one machine), then wait for every
    task. Job logs go to ``out/.submitit``."""
    import submitit

    executor = submitit.AutoExecutor(folder=out.resolve() / ".submitit" / "%j", cluster=options.slurm_cluster)
    parameters = {
        "timeout_min": options.slurm_time_min,
        "cpus_per_task": options.slurm_cpus,
        "gpus_per_node": options.slurm_gpus,
        "slurm_array_parallelism": options.workers or len(tasks),
    }
    if options.slurm_partition:
        parameters["slurm_partition"] = options.slurm_partition
    executor.update_parameters(**parameters)
    try:
        jobs = executor.map_array(execute_stack, tasks, [out.resolve()] * len(tasks))
    except Exception as exc:  # sbatch missing or refusing the job
        raise BenchError(f"could not submit the SLURM array: {exc}") from None
    waiting = dict(zip(jobs, tasks))
    for task in tasks:
        for run in task:
            progress.start(run)
    while waiting:
        for job in [job for job in waiting if job.done()]:
            task = waiting.pop(job)
            try:
                results = job.result()
            except Exception as exc:  # the job died (timeout, preemption, out of memory)
                results = [record_crash(run, out, f"slurm job {job.job_id} failed: {exc}") for run in task]
            for run, result in zip(task, results):
                progress.finished(run, result, skipped=False)
        time.sleep(0.5)
