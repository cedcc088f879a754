"""Executing runs where a launcher put them: one run alone (:func:`execute_run`) or several trained together as
one stacked model (:func:`execute_stack`). Each builds its dataset, trains through the training engine and leaves
its files to the run's recorder (:class:`~benchmark.runs.recording.RunRecorder`); it knows nothing of losses.
Launchers (:mod:`benchmark.sweeps.launchers`) decide where.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.data import build_dataset
from benchmark.plugins import load_plugins
from benchmark.runs.events import Listener, ignore
from benchmark.runs.recording import RunRecorder
from benchmark.runs.spec import Run
from benchmark.training.engine import train
from benchmark.training.run_training import Selection
from benchmark.training.stacking import train_stacked


def execute_run(run: Run, out: Path, listener: Listener = ignore) -> dict:
    """Train one run and write config.json, log.jsonl and (last, atomically) result.json; return the result. Its
    evaluations and its end go to ``listener`` as events (:mod:`benchmark.runs.events`).

    Any exception inside the run, and a ``SystemExit`` from a plugin, is recorded as ``status: failed`` with a
    one-line error, so that the sweep goes on; a file that cannot be written (a full disk) fails the run without
    raising (``unstored``: the result is returned, not on disk). An interrupt (KeyboardInterrupt, a kill) leaves
    no result.json, so the run is redone next time.
    """
    recorder = RunRecorder(run, out, listener)
    if recorder.unstored:
        return recorder.done(recorder.unstored)
    how = run.execution
    try:
        recorder.open_loggers()
        load_plugins(how.plugins)
        data = build_dataset(run.spec.dataset, run.spec.data_options, how.data_root)
        outcome = train(run.spec, data, recorder.on_eval, how, Selection(run.select, run.save_model))
    except (SystemExit, Exception) as exc:  # recorded, so that the sweep goes on
        outcome = exc
    return recorder.finish(outcome)


def execute_stack(runs: list[Run], out: Path, listener: Listener = ignore) -> list[dict]:
    """Train ``runs`` (one sweep's, sharing dataset and execution) together as one stacked model
    (:func:`~benchmark.training.stacking.train_stacked`) and write each run's files as :func:`execute_run` does; each
    run's end goes to ``listener`` as soon as it comes (a run that fails ends early), and all results are returned
    in order. One run is simply :func:`execute_run`."""
    if len(runs) == 1:
        return [execute_run(runs[0], out, listener)]
    recorders = [RunRecorder(run, out, listener) for run in runs]
    results = {i: recorder.done(recorder.unstored) for i, recorder in enumerate(recorders) if recorder.unstored}
    live = [i for i in range(len(runs)) if i not in results]
    how = runs[0].execution

    def finish(j: int, outcome: dict | BaseException) -> None:
        results[live[j]] = recorders[live[j]].finish(outcome)

    try:
        for i in live:
            recorders[i].open_loggers()
        load_plugins(how.plugins)
        data = build_dataset(runs[0].spec.dataset, runs[0].spec.data_options, how.data_root)
        on_evals = [recorders[i].on_eval for i in live]
        selections = [Selection(runs[i].select, runs[i].save_model) for i in live]
        train_stacked([runs[i].spec for i in live], data, on_evals, finish, how, selections)
    except (SystemExit, Exception) as exc:  # what stopped the whole stack fails each run it left unfinished
        for j, i in enumerate(live):
            if i not in results:
                finish(j, exc)
    return [results[i] for i in range(len(runs))]
