"""Where runs execute: in this process, a local process pool, Ray tasks, or a SLURM array through submitit.

Every launcher calls the same single-run function (:func:`benchmark.runner.execute_run`) and reports to a
:class:`~benchmark.runner.Progress`. A run whose process dies (killed, out of memory, a lost node) is recorded
as failed with the reason, and the sweep goes on.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from benchmark.capacity import check_capacity
from benchmark.data import adopt_datasets, built_datasets
from benchmark.errors import BenchError, require
from benchmark.runner import Progress, execute_run, record_crash
from benchmark.runs import Run

LAUNCHERS = ("local", "ray", "slurm")
MAX_DEFAULT_WORKERS = 8
SLURM_CLUSTERS = ("slurm", "local")


@dataclass(frozen=True)
class LaunchOptions:
    """How to spread runs: ``workers`` parallel runs (local: processes; ray: CPUs of a local instance; slurm:
    array parallelism) or, locally, ``workers_per_device`` processes on each device (each GPU, or the CPU) after a
    memory check (:func:`benchmark.capacity.check_capacity`), Ray's cluster address, and the SLURM job settings."""

    workers: int | None = None
    workers_per_device: int | None = None
    ray_address: str | None = None
    slurm_partition: str | None = None
    slurm_time_min: int = 60
    slurm_gpus: int = 0
    slurm_cpus: int = 2
    slurm_cluster: str = "slurm"


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
    if options.workers_per_device:
        return max(min(options.workers_per_device * max(cuda_devices(pending), 1), len(pending)), 1)
    return max(min(options.workers or default_workers(pending), len(pending)), 1)


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
    if launcher == "ray":
        run_ray(pending, out, progress, options)
    elif launcher == "slurm":
        run_slurm(pending, out, progress, options)
    else:
        workers = parallel_runs(pending, launcher, options)
        if options.workers_per_device and workers > 1:
            check_capacity(pending, -(-workers // max(cuda_devices(pending), 1)), device_of(pending))
        if workers > 1:
            run_pool(pending, out, progress, workers)
        else:
            run_in_process(pending, out, progress)


def run_in_process(pending: list[Run], out: Path, progress: Progress) -> None:
    """One run after another in this process (the dataset is built once and cached)."""
    for run in pending:
        progress.start(run)
        progress.finished(run, execute_run(run, out, progress), skipped=False)


class _QueueProgress(Progress):
    """Forwards a worker's evaluations to the parent's progress through the events queue."""

    def __init__(self, events, worker: int, index: int):
        self.events, self.worker, self.index = events, worker, index

    def evaluated(self, run: Run, record: dict) -> None:
        self.events.put(("evaluated", self.worker, self.index, record))


def _pool_worker(worker: int, tasks, events, gpu: int | None, parent: int) -> None:
    """A pool process: adopt the parent's built datasets (:func:`~benchmark.data.built_datasets`, the first
    message), then take (index, run, out) tasks until None arrives or the parent is gone."""
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
        index, run, out = task
        result = execute_run(run, Path(out), _QueueProgress(events, worker, index))
        events.put(("finished", worker, index, result))


def device_of(pending: list[Run]):
    """The device the runs train on (the first CUDA device when there are several)."""
    from benchmark.devices import resolve_device

    return resolve_device(pending[0].execution.device)


def cuda_devices(pending: list[Run]) -> int:
    """How many CUDA devices the runs can spread over (0 when they train on CPU)."""
    import torch

    return torch.cuda.device_count() if device_of(pending).type == "cuda" else 0


def run_pool(pending: list[Run], out: Path, progress: Progress, workers: int) -> None:
    """``workers`` spawned processes (each its own GPU when there are several), which take over the datasets this
    process built when checking the sweep (:func:`~benchmark.runner.preflight`) instead of building them again.
    A worker that dies has its run recorded as failed and is replaced; stopping the sweep (Ctrl-C, or SIGTERM,
    which :func:`benchmark.sweep.run_sweep` turns into the same interrupt) stops the workers, leaving their runs
    to be redone."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    gpus = cuda_devices(pending)
    todo = deque(enumerate(pending))
    procs: dict[int, tuple] = {}  # worker -> (process, task queue)
    busy: dict[int, int] = {}  # worker -> index of the run it trains
    datasets = built_datasets()

    def start_worker(worker: int) -> None:
        tasks = context.Queue()
        gpu = worker % gpus if gpus > 1 else None
        args = (worker, tasks, events, gpu, os.getpid())
        process = context.Process(target=_pool_worker, args=args, name=f"bench-worker-{worker}")
        process.start()
        tasks.put(datasets)  # by the queue's feeder thread: the next worker starts while this one imports
        procs[worker] = (process, tasks)

    def assign(worker: int) -> None:
        if todo:
            index, run = todo.popleft()
            busy[worker] = index
            procs[worker][1].put((index, run, str(out)))
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
                if busy.get(worker) == index:
                    if kind == "evaluated":
                        progress.evaluated(pending[index], payload)
                    else:
                        del busy[worker]
                        progress.finished(pending[index], payload, skipped=False)
                        assign(worker)
            except queue.Empty:
                pass
            for worker, index in list(busy.items()):
                process = procs[worker][0]
                if not process.is_alive():
                    reason = f"worker process died (exit code {process.exitcode}) during the run"
                    del busy[worker]
                    progress.finished(pending[index], record_crash(pending[index], out, reason), skipped=False)
                    start_worker(worker)
                    assign(worker)
    finally:
        for process, tasks in procs.values():
            tasks.cancel_join_thread()  # exiting must not wait on a queue feeder an interrupt may have left blocked
            if process.is_alive():
                process.terminate()
        for process, _ in procs.values():
            process.join(timeout=10)


def run_ray(pending: list[Run], out: Path, progress: Progress, options: LaunchOptions) -> None:
    """Each run a Ray task (its threads as CPUs, 1 GPU on CUDA) on the cluster at ``ray_address`` or a local
    instance with ``workers`` CPUs (default: all cores). ``out`` must be a folder every node can write."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        cpus = None if options.ray_address else (options.workers or os.cpu_count())
        try:
            ray.init(address=options.ray_address, num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise BenchError(f"--ray-address {options.ray_address}: {exc}") from None
    try:
        gpus = 1 if cuda_devices(pending) else 0
        task = ray.remote(num_cpus=pending[0].execution.threads, num_gpus=gpus, max_retries=0)(execute_run)
        refs = {}
        for run in pending:
            refs[task.remote(run, out.resolve())] = run
            progress.start(run)
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            run = refs.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as exc:  # the task's process died: recorded, the sweep goes on
                result = record_crash(run, out, f"ray task failed: {type(exc).__name__}: {exc}")
            progress.finished(run, result, skipped=False)
    finally:
        if started_here:
            ray.shutdown()


def run_slurm(pending: list[Run], out: Path, progress: Progress, options: LaunchOptions) -> None:
    """One SLURM array job through submitit (``slurm_cluster="local"``: submitit's local executor, for testing
    on one machine), then wait for every task. Job logs go to ``out/.submitit``."""
    import submitit

    executor = submitit.AutoExecutor(folder=out.resolve() / ".submitit" / "%j", cluster=options.slurm_cluster)
    parameters = {
        "timeout_min": options.slurm_time_min,
        "cpus_per_task": options.slurm_cpus,
        "gpus_per_node": options.slurm_gpus,
        "slurm_array_parallelism": options.workers or len(pending),
    }
    if options.slurm_partition:
        parameters["slurm_partition"] = options.slurm_partition
    executor.update_parameters(**parameters)
    try:
        jobs = executor.map_array(execute_run, pending, [out.resolve()] * len(pending))
    except Exception as exc:  # sbatch missing or refusing the job
        raise BenchError(f"could not submit the SLURM array: {exc}") from None
    waiting = dict(zip(jobs, pending))
    for run in pending:
        progress.start(run)
    while waiting:
        for job in [job for job in waiting if job.done()]:
            run = waiting.pop(job)
            try:
                result = job.result()
            except Exception as exc:  # the job died (timeout, preemption, out of memory)
                result = record_crash(run, out, f"slurm job {job.job_id} failed: {exc}")
            progress.finished(run, result, skipped=False)
        time.sleep(0.5)
