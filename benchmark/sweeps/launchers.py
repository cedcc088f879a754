"""Where runs execute: in this process, a local process pool, Ray tasks, or a SLURM array through submitit.

Every launcher calls the same function (:func:`benchmark.sweeps.execute.execute_stack`: a run, or a stack of runs)
and sends every run's events (:mod:`benchmark.runs.events`) to the sweep's listener. A run whose process dies
(killed, out of memory, a lost node) is recorded as failed with the reason, and the sweep goes on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.runs.events import Listener, RunFinished, RunStarted
from benchmark.runs.spec import Run
from benchmark.runs.state import record_crash
from benchmark.sweeps.capacity import check_capacity
from benchmark.sweeps.execute import execute_stack
from benchmark.sweeps.options import SweepConfig
from benchmark.sweeps.placement import cuda_devices, device_of, parallel_runs, stack_tasks
from benchmark.sweeps.pool import Pool


def launch(pending: list[Run], config: SweepConfig, listener: Listener) -> None:
    """Run ``pending`` with the config's launcher; results land in ``config.out`` and every run's events go to
    ``listener``."""
    if not pending:
        return
    tasks, out = stack_tasks(pending, config.stack), config.out
    if config.launcher == "ray":
        run_ray(tasks, out, listener, config)
    elif config.launcher == "slurm":
        run_slurm(tasks, out, listener, config)
    else:
        workers = parallel_runs(pending, config)
        if config.workers_per_device and workers > 1:
            per_device = -(-workers // max(cuda_devices(pending), 1))
            check_capacity(pending, per_device, device_of(pending), max(len(task) for task in tasks))
        if workers > 1:
            Pool(tasks, out, listener, workers).run()
        else:
            run_in_process(tasks, out, listener)


def run_in_process(tasks: list[list[Run]], out: Path, listener: Listener) -> None:
    """One task after another in this process (the dataset is built once and cached)."""
    for task in tasks:
        for run in task:
            listener(RunStarted(run))
        execute_stack(task, out, listener)


def run_ray(tasks: list[list[Run]], out: Path, listener: Listener, config: SweepConfig) -> None:
    """Each task (a run, or a stack of runs) a Ray task (the run's threads as CPUs, 1 GPU on CUDA) on the cluster at
    ``ray_address`` or a local instance with ``workers`` CPUs (default: all cores). ``out`` must be a folder every
    node can write."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        cpus = None if config.ray_address else (config.workers or os.cpu_count())
        try:
            ray.init(address=config.ray_address, num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        except ConnectionError as exc:
            raise BenchError(f"--ray-address {config.ray_address}: {exc}") from None
    try:
        first = tasks[0][0]
        gpus = 1 if cuda_devices([first]) else 0
        remote = ray.remote(num_cpus=first.execution.threads, num_gpus=gpus, max_retries=0)(execute_stack)
        refs = {}
        for task in tasks:
            refs[remote.remote(task, out.resolve())] = task
            for run in task:
                listener(RunStarted(run))
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            task = refs.pop(done[0])
            try:
                results = ray.get(done[0])
            except Exception as exc:  # the task's process died: recorded, the sweep goes on
                results = [record_crash(run, out, f"ray task failed: {type(exc).__name__}: {exc}") for run in task]
            for run, result in zip(task, results):
                listener(RunFinished(run, result))
    finally:
        if started_here:
            ray.shutdown()


def run_slurm(tasks: list[list[Run]], out: Path, listener: Listener, config: SweepConfig) -> None:
    """One SLURM array job through submitit, a task (a run, or a stack of runs) per array element
    (``slurm_cluster="local"``: submitit's local executor, for testing on one machine), then wait for every
    task. Job logs go to ``out/.submitit``."""
    import submitit

    executor = submitit.AutoExecutor(folder=out.resolve() / ".submitit" / "%j", cluster=config.slurm_cluster)
    parameters = {
        "timeout_min": config.slurm_time,
        "cpus_per_task": config.slurm_cpus,
        "gpus_per_node": config.slurm_gpus,
        "slurm_array_parallelism": config.workers or len(tasks),
    }
    if config.slurm_partition:
        parameters["slurm_partition"] = config.slurm_partition
    executor.update_parameters(**parameters)
    try:
        jobs = executor.map_array(execute_stack, tasks, [out.resolve()] * len(tasks))
    except Exception as exc:  # sbatch missing or refusing the job
        raise BenchError(f"could not submit the SLURM array: {exc}") from None
    waiting = dict(zip(jobs, tasks))
    for task in tasks:
        for run in task:
            listener(RunStarted(run))
    while waiting:
        for job in [job for job in waiting if job.done()]:
            task = waiting.pop(job)
            try:
                results = job.result()
            except Exception as exc:  # the job died (timeout, preemption, out of memory)
                results = [record_crash(run, out, f"slurm job {job.job_id} failed: {exc}") for run in task]
            for run, result in zip(task, results):
                listener(RunFinished(run, result))
        time.sleep(0.5)
