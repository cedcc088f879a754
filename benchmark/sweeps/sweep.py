"""One sweep from plan to outcome: which runs to train, claiming them, launching, collecting what happened.

:func:`run_sweep` is what ``bench run`` calls after :func:`~benchmark.sweeps.plan.plan_sweep`: it skips finished
runs, checks everything a run needs before any trains (:func:`~benchmark.sweeps.preflight.preflight`), claims each
run it will train so that concurrent sweeps on one folder train it once (:mod:`benchmark.runs.state`), launches
them, and returns a :class:`SweepOutcome`. :func:`run_tuned_sweep` makes two such sweeps (``--tune-seeds``). Ctrl-C
or SIGTERM raise :class:`Interrupted` with what finished; every finished run is on disk either way.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from benchmark.core.selection import select_trials
from benchmark.report.frames import runs_frame
from benchmark.runs.events import Event, Listener, Note, RunFinished, SweepBegun, ignore
from benchmark.runs.spec import Run
from benchmark.runs.state import claim_pending, claim_run, release_claim, runs_to_do, stored_result, unique_runs
from benchmark.runs.store import read_result
from benchmark.sweeps.launchers import launch
from benchmark.sweeps.options import SweepConfig
from benchmark.sweeps.placement import parallel_runs
from benchmark.sweeps.preflight import preflight

POLL_S = 1.0  # how often a sweep looks whether runs another sweep holds have finished


@dataclass
class SweepOutcome:
    """Every run of the sweep with its result (stored, or just trained), in plan order; ``attempted`` holds the
    ids of the runs this sweep trained, ``by_others`` counts the runs another sweep on the same folder was
    training and finished."""

    runs: list[tuple[Run, dict]]
    attempted: set[str] = field(default_factory=set)
    by_others: int = 0

    @property
    def failed(self) -> list[tuple[Run, dict]]:
        """Runs whose result is not ``ok``: failed, corrupt, or not stored."""
        return [(run, result) for run, result in self.runs if result.get("status") != "ok"]

    @property
    def results(self) -> list[dict]:
        return [result for _, result in self.runs]


class Interrupted(Exception):
    """The sweep stopped on a signal (``signum``) after ``finished`` of its ``total`` runs had a result."""

    def __init__(self, signum: int, finished: int, total: int):
        super().__init__(f"interrupted: {finished} of {total} runs finished")
        self.signum, self.finished, self.total = signum, finished, total


class Collecting:
    """A listener that keeps each run's result, releases a run's claim when it ends, and forwards every event to the
    user's listener."""

    def __init__(self, inner: Listener, out: Path):
        self.inner, self.out, self.results = inner, out, {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self.results[event.run.run_id] = event.result
            if not event.skipped:
                release_claim(event.run.directory(self.out))
        self.inner(event)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signum)


def _wait_for_others(waiting: list[Run], config: SweepConfig, collecting: Collecting, mine: list[Run]) -> int:
    """Wait for the runs other sweeps hold: each is reported once its owner has released it with a result, and
    trained here (into ``mine``) if the owner is gone without one. Returns how many the other sweeps finished."""
    finished_elsewhere = 0
    while waiting:
        time.sleep(POLL_S)
        for run in list(waiting):
            directory = run.directory(config.out)
            if claim_run(directory) is not None:
                continue
            waiting.remove(run)
            result = read_result(directory)
            if result is not None:
                release_claim(directory)
                collecting(RunFinished(run, result, skipped=True))
                finished_elsewhere += 1
            else:
                mine.append(run)
                launch([run], config, collecting)
    return finished_elsewhere


def _launch_claimed(unique: list[Run], config: SweepConfig, collecting: Collecting, mine: list[Run]) -> int:
    """Check, claim and launch the runs of ``unique`` still to train, report the others as done, and wait for those
    another sweep holds; returns how many the other sweeps finished."""
    out = config.out
    pending = runs_to_do(unique, out, config.force, config.retry_failed)
    preflight(pending, out)
    parallel = parallel_runs(pending, config)
    pending = [replace(run, execution=replace(run.execution, parallel=parallel)) for run in pending]
    collecting(SweepBegun(len(unique), parallel, tuple(pending)))
    claimed, elsewhere, finished = claim_pending(pending, out, config.force, config.retry_failed)
    mine += claimed
    busy = {run.run_id for run in [*claimed, *elsewhere]}
    for run in unique:
        if run.run_id not in busy:
            collecting(RunFinished(run, finished.get(run.run_id) or stored_result(run, out), skipped=True))
    launch(claimed, config, collecting)
    if not elsewhere:
        return 0
    collecting(Note(f"waiting for {len(elsewhere)} run(s) that another sweep on {out} is training"))
    return _wait_for_others(elsewhere, config, collecting, mine)


def run_sweep(runs: list[Run], config: SweepConfig, listener: Listener = ignore) -> SweepOutcome:
    """Train the ``runs`` that have no stored result in ``config.out`` (all with ``force``, failed ones too with
    ``retry_failed``) and return every run's outcome; every event goes to ``listener``. Runs that another sweep on
    the same folder is training are waited for (and taken over if that sweep dies). Raises
    :class:`~benchmark.core.errors.BenchError` before any training for a problem the pre-flight finds,
    :class:`Interrupted` on Ctrl-C or SIGTERM."""
    unique = unique_runs(runs)
    collecting, mine, by_others = Collecting(listener, config.out), [], 0
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        by_others = _launch_claimed(unique, config, collecting, mine)
    except KeyboardInterrupt as exc:
        signum = exc.args[0] if exc.args and isinstance(exc.args[0], int) else signal.SIGINT
        raise Interrupted(signum, len(collecting.results), len(unique)) from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        for run in mine:
            release_claim(run.directory(config.out))
    missing = {"status": "failed", "error": "the run left no result"}
    outcomes = [(run, collecting.results.get(run.run_id) or missing) for run in unique]
    return SweepOutcome(outcomes, {run.run_id for run in mine}, by_others)


def tuning_winners(outcome: SweepOutcome) -> set[str]:
    """The config ids of each family's best trial among ``outcome``'s finished runs, by the runs' selection rule
    (:func:`~benchmark.core.selection.select_trials`, as the leaderboard chooses)."""
    finished = [result for _, result in outcome.runs if result.get("status") == "ok"]
    if not finished:
        return set()
    select = outcome.runs[0][0].select
    return set(select_trials(runs_frame(finished, select), select)["config_id"])


def run_tuned_sweep(runs: list[Run], config: SweepConfig, listener: Listener = ignore) -> SweepOutcome:
    """Two-phase tuning: every trial of ``runs`` on ``config.tune_seeds`` only, then each family's winning trial
    (:func:`tuning_winners`) on its other seeds. Both phases are ordinary sweeps (resumable, finished runs
    skipped); ``runs`` holds every trial on every seed (the tuning seeds and the final seeds). An
    :class:`Interrupted` counts the runs of both phases (in the first, one winner per family still to come)."""
    tune_seeds = config.tune_seeds
    tuning = [run for run in runs if run.spec.seed in tune_seeds]
    to_come = len({(run.family, run.spec.seed) for run in runs if run.spec.seed not in tune_seeds})
    try:
        first = run_sweep(tuning, config, listener)
    except Interrupted as stop:
        raise Interrupted(stop.signum, stop.finished, stop.total + to_come) from None
    winners = tuning_winners(first)
    final = [run for run in runs if run.spec.config_id in winners and run.spec.seed not in tune_seeds]
    if not final:
        return first
    listener(Note(f"tuning done: {len(winners)} winning trial(s) now train on {len(final)} more run(s)"))
    try:
        second = run_sweep(final, config, listener)
    except Interrupted as stop:
        raise Interrupted(stop.signum, len(first.runs) + stop.finished, len(first.runs) + stop.total) from None
    attempted, by_others = first.attempted | second.attempted, first.by_others + second.by_others
    return SweepOutcome(first.runs + second.runs, attempted, by_others)
