"""The local launcher's process pool (``--workers N``): spawned processes that each train one task (one run, or a
stack of runs) at a time and forward their runs' events (:mod:`benchmark.runs.events`) to the sweep through one
queue. A worker that dies has the runs of its task that had not finished recorded as failed and is replaced."""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections import deque
from pathlib import Path

from benchmark.data import adopt_datasets, built_datasets
from benchmark.runs.events import Evaluated, Listener, RunFinished, RunStarted
from benchmark.runs.spec import Run
from benchmark.runs.state import record_crash
from benchmark.sweeps.execute import execute_stack
from benchmark.sweeps.placement import cuda_devices


def _pool_worker(worker: int, tasks, events, gpu: int | None, parent: int) -> None:
    """A pool process: adopt the parent's built datasets (:func:`~benchmark.data.built_datasets`, the first
    message), then take (runs, out) tasks until None arrives or the parent is gone; every event of a task's runs
    goes to the parent as ``(worker, event)``."""
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
        runs, out = task
        execute_stack(runs, Path(out), lambda event: events.put((worker, event)))


class Pool:
    """``workers`` spawned processes (each its own GPU when there are several), which take over the datasets this
    process built when checking the sweep (:func:`~benchmark.sweeps.preflight.preflight`) instead of building them
    again. Stopping the sweep (Ctrl-C, or SIGTERM, which :func:`benchmark.sweeps.sweep.run_sweep` turns into the
    same interrupt) stops the workers, leaving their runs to be redone."""

    def __init__(self, tasks: list[list[Run]], out: Path, listener: Listener, workers: int):
        self.out, self.listener, self.workers = out, listener, workers
        self.context = multiprocessing.get_context("spawn")
        self.events = self.context.Queue()
        self.runs = {run.run_id: run for task in tasks for run in task}
        self.gpus = cuda_devices(list(self.runs.values()))
        self.todo = deque(tasks)
        self.procs: dict[int, tuple] = {}  # worker -> (process, task queue)
        self.busy: dict[int, set[str]] = {}  # worker -> ids of the runs of its task still training
        self.datasets = built_datasets()

    def start_worker(self, worker: int) -> None:
        tasks = self.context.Queue()
        gpu = worker % self.gpus if self.gpus > 1 else None
        args = (worker, tasks, self.events, gpu, os.getpid())
        process = self.context.Process(target=_pool_worker, args=args, name=f"bench-worker-{worker}")
        process.start()
        tasks.put(self.datasets)  # by the queue's feeder thread: the next worker starts while this one imports
        self.procs[worker] = (process, tasks)

    def assign(self, worker: int) -> None:
        """The next task to ``worker``, or None (stop) when there is none."""
        if not self.todo:
            self.procs[worker][1].put(None)
            return
        task = self.todo.popleft()
        self.busy[worker] = {run.run_id for run in task}
        self.procs[worker][1].put((task, str(self.out)))
        for run in task:
            self.listener(RunStarted(run))

    def ended(self, worker: int, run: Run, result: dict) -> None:
        """``run`` of ``worker``'s task has its result; the worker takes the next task once its own has ended."""
        self.busy[worker].discard(run.run_id)
        self.listener(RunFinished(run, result))
        if not self.busy[worker]:
            del self.busy[worker]
            self.assign(worker)

    def receive(self) -> None:
        """Forward the next event of a run still training (events of a replaced worker's runs are dropped)."""
        try:
            worker, event = self.events.get(timeout=0.5)
        except queue.Empty:
            return
        if event.run.run_id not in self.busy.get(worker, ()):
            return
        if isinstance(event, Evaluated):
            self.listener(event)
        elif isinstance(event, RunFinished):
            self.ended(worker, event.run, event.result)

    def replace_dead(self) -> None:
        """Record the unfinished runs of every worker that died as failed, and start a new worker in its place."""
        for worker, run_ids in list(self.busy.items()):
            process = self.procs[worker][0]
            if not process.is_alive():
                reason = f"worker process died (exit code {process.exitcode}) during the run"
                del self.busy[worker]
                for run_id in sorted(run_ids):
                    run = self.runs[run_id]
                    self.listener(RunFinished(run, record_crash(run, self.out, reason)))
                self.start_worker(worker)
                self.assign(worker)

    def run(self) -> None:
        try:
            for worker in range(self.workers):
                self.start_worker(worker)
                self.assign(worker)
            while self.busy:
                self.receive()
                self.replace_dead()
        finally:
            for process, tasks in self.procs.values():
                tasks.cancel_join_thread()  # exiting must not wait on a feeder an interrupt may have left blocked
                if process.is_alive():
                    process.terminate()
            for process, _ in self.procs.values():
                process.join(timeout=10)
