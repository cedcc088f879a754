"""One sweep from plan to outcome: which runs to train, claiming them, launching, collecting what happened.

:func:`run_sweep` is what ``bench run`` calls after :func:`~benchmark.sweeps.plan.plan_sweep`: it skips finished
runs, checks everything a run needs before any trains (:func:`~benchmark.sweeps.execute.preflight`), claims each run it
will train so that concurrent sweeps on one folder train it once (DESIGN.md, "Results on disk"), launches them,
and returns a :class:`SweepOutcome`. :func:`run_tuned_sweep` makes two such sweeps (``--tune-seeds``). Ctrl-C
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
from benchmark.runs.events import Progress
from benchmark.runs.spec import Run
from benchmark.runs.state import claim_run, release_claim, runs_to_do, stored_result, unique_runs
from benchmark.runs.store import read_result
from benchmark.sweeps.launchers import LaunchOptions, launch, parallel_runs
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


class _Collecting(Progress):
    """Forwards every event to the user's progress, keeps each run's result, and releases a run's claim when it
    ends."""

    def __init__(self, inner: Progress, out: Path):
        self.inner, self.out, self.results = inner, out, {}

    def begin(self, total: int, parallel: int, pending: list[Run] = ()) -> None:
        self.inner.begin(total, parallel, pending)

    def start(self, run: Run) -> None:
        self.inner.start(run)

    def evaluated(self, run: Run, record: dict) -> None:
        self.inner.evaluated(run, record)

    def finished(self, run: Run, result: dict, skipped: bool) -> None:
        self.results[run.run_id] = result
        if not skipped:
            release_claim(run.directory(self.out))
        self.inner.finished(run, result, skipped)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(signum)


def _claim(pending: list[Run], out: Path, force: bool, retry_failed: bool, collecting: _Collecting, mine: list):
    """Claim each pending run into ``mine``; return those another live sweep holds. A run that another sweep
    finished after this one looked is reported as done."""
    elsewhere = []
    for run in pending:
        directory = run.directory(out)
        if claim_run(directory) is not None:
            elsewhere.append(run)
        elif not force and (stored := stored_result(run, out, retry_failed)) is not None:
            release_claim(directory)
            collecting.finished(run, stored, skipped=True)
        else:
            mine.append(run)
    return elsewhere


def _wait_for_others(waiting: list[Run], out: Path, launcher: str, options: LaunchOptions, collecting, mine) -> int:
    """Wait for the runs other sweeps hold: each is reported once its owner has released it with a result, and
    trained here (into ``mine``) if the owner is gone without one. Returns how many the other sweeps finished."""
    finished_elsewhere = 0
    while waiting:
        time.sleep(POLL_S)
        for run in list(waiting):
            directory = run.directory(out)
            if claim_run(directory) is not None:
                continue
            waiting.remove(run)
            result = read_result(directory)
            if result is not None:
                release_claim(directory)
                collecting.finished(run, result, skipped=True)
                finished_elsewhere += 1
            else:
                mine.append(run)
                launch(launcher, [run], out, collecting, options)
    return finished_elsewhere


def run_sweep(
    runs: list[Run],
    out: Path,
    launcher: str = "local",
    options: LaunchOptions = LaunchOptions(),
    progress: Progress | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> SweepOutcome:
    """Train the ``runs`` that have no stored result (all with ``force``, failed ones too with
    ``retry_failed``) and return every run's outcome. Runs that another sweep on the same folder is training are
    waited for (and taken over if that sweep dies). Raises :class:`~benchmark.core.errors.BenchError` before any
    training for a problem the pre-flight finds, :class:`Interrupted` on Ctrl-C or SIGTERM."""
    out = Path(out)
    unique = unique_runs(runs)
    collecting = _Collecting(progress or Progress(), out)
    mine: list[Run] = []
    by_others = 0
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        pending = runs_to_do(unique, out, force, retry_failed)
        preflight(pending, out)
        parallel = parallel_runs(pending, launcher, options)
        pending = [replace(run, execution=replace(run.execution, parallel=parallel)) for run in pending]
        collecting.inner.begin(len(unique), parallel, pending)
        elsewhere = _claim(pending, out, force, retry_failed, collecting, mine)
        busy = {run.run_id for run in [*mine, *elsewhere]}
        for run in unique:
            if run.run_id not in busy and run.run_id not in collecting.results:
                collecting.finished(run, stored_result(run, out), skipped=True)
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
        for run in mine:
            release_claim(run.directory(out))
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


def run_tuned_sweep(
    runs: list[Run],
    tune_seeds: list[int],
    out: Path,
    launcher: str = "local",
    options: LaunchOptions = LaunchOptions(),
    progress: Progress | None = None,
    force: bool = False,
    retry_failed: bool = False,
) -> SweepOutcome:
    """Two-phase tuning: every trial of ``runs`` on the ``tune_seeds`` only, then each family's winning trial
    (:func:`tuning_winners`) on its other seeds. Both phases are ordinary sweeps (resumable, finished runs
    skipped); ``runs`` holds every trial on every seed (the tuning seeds and the final seeds). An
    :class:`Interrupted` counts the runs of both phases (in the first, one winner per family still to come)."""
    tuning = [run for run in runs if run.spec.seed in tune_seeds]
    to_come = len({(run.family, run.spec.seed) for run in runs if run.spec.seed not in tune_seeds})
    try:
        first = run_sweep(tuning, out, launcher, options, progress, force, retry_failed)
    except Interrupted as stop:
        raise Interrupted(stop.signum, stop.finished, stop.total + to_come) from None
    winners = tuning_winners(first)
    final = [run for run in runs if run.spec.config_id in winners and run.spec.seed not in tune_seeds]
    if progress is not None and final:
        progress.note(f"tuning done: {len(winners)} winning trial(s) now train on {len(final)} more run(s)")
    if not final:
        return first
    try:
        second = run_sweep(final, out, launcher, options, progress, force, retry_failed)
    except Interrupted as stop:
        raise Interrupted(stop.signum, len(first.runs) + stop.finished, len(first.runs) + stop.total) from None
    attempted, by_others = first.attempted | second.attempted, first.by_others + second.by_others
    return SweepOutcome(first.runs + second.runs, attempted, by_others)
