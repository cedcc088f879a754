"""One sweep from plan to outcome: which runs to train, claiming them, launching, collecting what happened.

:func:`run_sweep` is what ``bench run`` calls after :func:`~benchmark.runner.plan_sweep`: it skips finished
runs, checks everything a run needs before any trains (:func:`~benchmark.runner.preflight`), claims each run it
will train so that concurrent sweeps on one folder train it once (DESIGN.md, "Results on disk"), launches them,
and returns a :class:`SweepOutcome`. Ctrl-C or SIGTERM raise :class:`Interrupted` with what finished; every
finished run is on disk either way.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.config import RunSpec
from benchmark.launchers import LaunchOptions, default_workers, launch
from benchmark.runner import Progress, preflight, runs_to_do, stored_result, unique_runs
from benchmark.store import claim_run, read_result, release_claim

POLL_S = 1.0  # how often a sweep looks whether runs another sweep holds have finished


@dataclass
class SweepOutcome:
    """Every run of the sweep with its result (stored, or just trained), in plan order; ``attempted`` holds the
    ids of the runs this sweep trained, ``by_others`` counts the runs another sweep on the same folder was
    training and finished."""

    runs: list[tuple[RunSpec, dict]]
    attempted: set[str] = field(default_factory=set)
    by_others: int = 0

    @property
    def failed(self) -> list[tuple[RunSpec, dict]]:
        """Runs whose result is not ``ok``: failed, corrupt, or not stored."""
        return [(spec, result) for spec, result in self.runs if result.get("status") != "ok"]

    @property
    def results(self) -> list[dict]:
        return [result for _, result in self.runs]


class Interrupted(Exception):
    """The sweep stopped on a signal (``signum``) after ``finished`` of its ``total`` runs had a result."""

    def __init__(self, signum: int, finished: int, total: int):
        super().__init__(f"interrupted: {finished} of {total} runs finished")
        self.signum, self.finished, self.total = signum, finished, total


class _Collecting(Progress):
    """Forwards every event to the user's progress, keeps each run's result, and releases a run's claim when it
    ends."""

    def __init__(self, inner: Progress, out: Path):
        self.inner, self.out, self.results = inner, out, {}

    def begin(self, total: int, parallel: int) -> None:
        self.inner.begin(total, parallel)

    def start(self, spec: RunSpec) -> None:
        self.inner.start(spec)

    def evaluated(self, spec: RunSpec, record: dict) -> None:
        self.inner.evaluated(spec, record)

    def finished(self, spec: RunSpec, result: dict, skipped: bool) -> None:
        self.results[spec.run_id] = result
        if not skipped:
            release_claim(spec.directory(self.out))
        self.inner.finished(spec, result, skipped)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signum)


def _claim(pending: list[RunSpec], out: Path, force: bool, retry_failed: bool, collecting: _Collecting, mine: list):
    """Claim each pending run into ``mine``; return those another live sweep holds. A run that another sweep
    finished after this one looked is reported as done."""
    elsewhere = []
    for spec in pending:
        directory = spec.directory(out)
        if claim_run(directory) is not None:
            elsewhere.append(spec)
        elif not force and (stored := stored_result(spec, out, retry_failed)) is not None:
            release_claim(directory)
            collecting.finished(spec, stored, skipped=True)
        else:
            mine.append(spec)
    return elsewhere


def _wait_for_others(waiting: list[RunSpec], out: Path, launcher: str, options: LaunchOptions, collecting, mine) -> int:
    """Wait for the runs other sweeps hold: each is reported once its owner has released it with a result, and
    trained here (into ``mine``) if the owner is gone without one. Returns how many the other sweeps finished."""
    finished_elsewhere = 0
    while waiting:
        time.sleep(POLL_S)
        for spec in list(waiting):
            directory = spec.directory(out)
            if claim_run(directory) is not None:
                continue
            waiting.remove(spec)
            result = read_result(directory)
            if result is not None:
                release_claim(directory)
                collecting.finished(spec, result, skipped=True)
                finished_elsewhere += 1
            else:
                mine.append(spec)
                launch(launcher, [spec], out, collecting, options)
    return finished_elsewhere


def run_sweep(
    specs: list[RunSpec],
    out: Path,
    launcher: str = "local",
    options: LaunchOptions = LaunchOptions(),
    progress: Progress | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> SweepOutcome:
    """Train the runs of ``specs`` that have no stored result (all with ``force``, failed ones too with
    ``retry_failed``) and return every run's outcome. Runs that another sweep on the same folder is training are
    waited for (and taken over if that sweep dies). Raises :class:`~benchmark.errors.BenchError` before any
    training for a problem the pre-flight finds, :class:`Interrupted` on Ctrl-C or SIGTERM."""
    out = Path(out)
    unique = unique_runs(specs)
    collecting = _Collecting(progress or Progress(), out)
    mine: list[RunSpec] = []
    by_others = 0
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        pending = runs_to_do(unique, out, force, retry_failed)
        preflight(pending, out)
        parallel = options.workers or (default_workers(pending) if launcher == "local" else 1)
        collecting.inner.begin(len(unique), parallel)
        elsewhere = _claim(pending, out, force, retry_failed, collecting, mine)
        busy = {spec.run_id for spec in [*mine, *elsewhere]}
        for spec in unique:
            if spec.run_id not in busy and spec.run_id not in collecting.results:
                collecting.finished(spec, stored_result(spec, out), skipped=True)
        launch(launcher, list(mine), out, collecting, options)
        if elsewhere:
            collecting.inner.note(f"waiting for {len(elsewhere)} run(s) that another sweep on {out} is training")
            by_others = _wait_for_others(list(elsewhere), out, launcher, options, collecting, mine)
    except KeyboardInterrupt as exc:
        signum = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
        raise Interrupted(signum, len(collecting.results), len(unique)) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for spec in mine:
            release_claim(spec.directory(out))
    missing = {"status": "failed", "error": "the run left no result"}
    runs = [(spec, collecting.results.get(spec.run_id) or missing) for spec in unique]
    return SweepOutcome(runs, {spec.run_id for spec in mine}, by_others)
