"""Executing runs where a launcher put them: one run alone (:func:`execute_run`) or several trained together as
one stacked model (:func:`execute_stack`). Each builds its dataset, trains through the training engine and leaves
its files to the run's recorder (:class:`~benchmark.runs.recording.RunRecorder`); it knows nothing of losses.
Launchers (:mod:`benchmark.sweeps.launchers`) decide where.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data import build_dataset
from benchmark.plugins import load_plugins
from benchmark.runs.events import Progress
from benchmark.runs.recording import RunRecorder
from benchmark.runs.spec import Run
from benchmark.training.engine import train
from benchmark.training.stacking import train_stacked


def execute_run(run: Run, out: Path, progress: Progress | None = None) -> dict:
    """Train one run and write config.json, log.jsonl and (last, atomically) result.json; return the result.

    Any exception inside the run, and a ``SystemExit`` from a plugin, is recorded as ``status: failed`` with a
    one-line error, so that the sweep goes on; a file that cannot be written (a full disk) fails the run without
    raising (``unstored``: the result is returned, not on disk). An interrupt (KeyboardInterrupt, a kill) leaves
    no result.json, so the run is redone next time.
    """
    recorder = RunRecorder(run, out, progress)
    if recorder.unstored:
        return recorder.unstored
    how = run.execution
    try:
        recorder.open_loggers()
        load_plugins(how.plugins)
        data = build_dataset(run.spec.dataset, run.spec.data_options, how.data_root)
        outcome = train(run.spec, data, recorder.on_eval, how, recorder.keep)
    except (SystemExit, Exception) as exc:  # recorded, so that the sweep goes on
        outcome = exc
    return recorder.finish(outcome)


def execute_stack(runs: list[Run], out: Path, progress: Progress | None = None, finished=None) -> list[dict]:
    """Train ``runs`` (one sweep's, sharing dataset and execution) together as one stacked model
    (:func:`~benchmark.training.stacking.train_stacked`) and write each run's files as :func:`execute_run` does; each
    run's result goes to ``finished(index, result)`` as soon as it ends (a run that fails ends early), and all are
    returned in order. One run is simply :func:`execute_run`."""
    if len(runs) > 1:
        return _execute_stack(runs, out, progress, finished)
    result = execute_run(runs[0], out, progress)
    if finished is not None:
        finished(0, result)
    return [result]


def _execute_stack(runs: list[Run], out: Path, progress: Progress | None, finished) -> list[dict]:
    recorders = [RunRecorder(run, out, progress) for run in runs]
    results: dict[int, dict] = {}

    def done(i: int, result: dict) -> None:
        results[i] = result
        if finished is not None:
            finished(i, result)

    for i, recorder in enumerate(recorders):
        if recorder.unstored:
            done(i, recorder.unstored)
    live = [i for i in range(len(runs)) if i not in results]
    how = runs[0].execution
    try:
        for i in live:
            recorders[i].open_loggers()
        load_plugins(how.plugins)
        data = build_dataset(runs[0].spec.dataset, runs[0].spec.data_options, how.data_root)
        train_stacked(
            [runs[i].spec for i in live],
            data,
            [recorders[i].on_eval for i in live],
            lambda j, outcome: done(live[j], recorders[live[j]].finish(outcome)),
            how,
            [recorders[i].keep for i in live],
        )
    except (SystemExit, Exception) as exc:  # what stopped the whole stack fails each run it left unfinished
        for i in live:
            if i not in results:
                done(i, recorders[i].finish(exc))
    return [results[i] for i in range(len(runs))]
