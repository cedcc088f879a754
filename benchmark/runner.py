"""The single-run function every launcher calls, and what a sweep asks of stored runs.

The runner knows nothing of losses: it finds the runs still to do, checks before training that they can run
(:func:`preflight`), and :func:`execute_run` trains one run, selects its reported epoch and writes its files.
Launchers (:mod:`benchmark.launchers`) decide where.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import torch

from benchmark.data import build_dataset
from benchmark.environment import environment
from benchmark.errors import BenchError
from benchmark.plugins import load_plugins
from benchmark.runs import Run
from benchmark.selection import selected, selection_score
from benchmark.stacked import train_stacked
from benchmark.store import (
    RunLog,
    check_run_paths,
    check_writable,
    read_result,
    remove_partial_writes,
    write_json_atomic,
)
from benchmark.tensorboard_log import TensorBoardLog, check_tensorboard
from benchmark.trainer import build_method, run_settings, train


class Progress:
    """Callbacks a sweep reports to; the base class is silent."""

    def begin(self, total: int, parallel: int, pending: list[Run] = ()) -> None:
        """The sweep has ``total`` runs (finished ones included), of which ``pending`` are still to train (here
        or by another sweep on the folder), up to ``parallel`` at a time."""

    def start(self, run: Run) -> None: ...

    def evaluated(self, run: Run, record: dict) -> None: ...

    def finished(self, run: Run, result: dict, skipped: bool) -> None: ...

    def note(self, text: str) -> None:
        """A message about the sweep as a whole (e.g. waiting for another sweep's runs)."""


def error_line(exc: BaseException) -> str:
    """One line for a failure record: ``Type: first line of the message``; an exception re-raised from a
    DataLoader worker (whose message carries the worker's whole traceback) becomes its last line and the worker."""
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text and len(lines) > 2:
        return f"{lines[-1]} (in {lines[0].split(' in ', 1)[-1].rstrip('.')})"
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def failure(exc: BaseException) -> dict:
    """A failed run's record: the one-line error and the traceback of where it was raised."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    return {"status": "failed", "error": error_line(exc), "traceback": frames + error_line(exc)}


def unstored(result: dict, path: Path, exc: OSError) -> dict:
    """``result`` as a failed run that could not be written to ``path`` (a full disk, say)."""
    error = f"could not write {path}: {exc.strerror or exc}"
    return {**result, "status": "failed", "error": error, "unstored": True}


MODEL_FILE = "model.pt"


def best_so_far(rule: str):
    """A ``keep`` for the trainer: true for each evaluation that beats every earlier one under ``rule``, so the
    last kept model is the one :func:`~benchmark.selection.select_epoch` picks (the first of equal scores)."""
    best = [None]

    def keep(record: dict) -> bool:
        score = selection_score(record, rule)
        if best[0] is None or score > best[0]:
            best[0] = score
            return True
        return False

    return keep


def save_state(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


class RunRecorder:
    """One run's files while it trains: config.json and log.jsonl (with any extra loggers) from the start,
    result.json, written last and atomically, at the end (:meth:`finish`). ``unstored`` holds the failed result
    when the run's folder could not be written (a full disk); the run then does not train."""

    def __init__(self, run: Run, out: Path, progress: Progress | None = None):
        self.run, self.progress = run, progress or Progress()
        self.directory, self.header = run.directory(out), run.header()
        self.loggers, self.unstored, self.log = [], None, None
        self.keep = best_so_far(run.select) if run.save_model else None
        try:
            remove_partial_writes(self.directory)
            write_json_atomic(self.directory / "config.json", {**self.header, "device": run.execution.device,
                                                                "data_root": run.execution.data_root})  # fmt: skip
            self.log = RunLog(self.directory / "log.jsonl")
            self.loggers.append(self.log)
        except OSError as exc:
            self.unstored = unstored({**self.header, "status": "failed"}, self.directory, exc)

    def open_loggers(self) -> None:
        """The extra loggers the run asks for (``--log``)."""
        if "tensorboard" in self.run.log:
            self.loggers.append(TensorBoardLog(self.directory / "tensorboard"))

    def on_eval(self, record: dict) -> None:
        for logger in self.loggers:
            logger(record)
        self.progress.evaluated(self.run, record)

    def finish(self, outcome: dict | BaseException) -> dict:
        """The run's result from what training returned, or the exception that stopped it (a ``SystemExit`` from a
        plugin included), written to result.json; the loggers are closed."""
        run = self.run
        try:
            if isinstance(outcome, SystemExit):
                result = {**failure(outcome), "error": f"the run called sys.exit({outcome.code!r})"}
            elif isinstance(outcome, BaseException):
                result = failure(outcome)
            else:
                result = {"status": "ok", **selected(outcome, run.select), "parallel_runs": run.execution.parallel}
                if run.save_model:
                    save_state(result.pop("state_dict"), self.directory / MODEL_FILE)
                    result["model_file"] = MODEL_FILE
        except Exception as exc:  # saving the model failed: recorded, so that the sweep goes on
            result = failure(exc)
        finally:
            for logger in self.loggers:
                logger.close()
        result = {**self.header, **result, "environment": environment(torch.device(result.get("device", "cpu")))}
        result |= {"log_error": self.log.error} if self.log.error else {}
        try:
            write_json_atomic(self.directory / "result.json", result)
        except OSError as exc:
            return unstored(result, self.directory / "result.json", exc)
        return result


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
    (:func:`~benchmark.stacked.train_stacked`) and write each run's files as :func:`execute_run` does; each run's
    result goes to ``finished(index, result)`` as soon as it ends (a run that fails ends early), and all are
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


def record_crash(run: Run, out: Path, reason: str) -> dict:
    """The run's result after its process died: the result.json it managed to write, or a failed one (written
    if the disk allows)."""
    result = read_result(run.directory(out))
    if result is None:
        result = {**run.header(), "status": "failed", "error": reason}
        try:
            write_json_atomic(run.directory(out) / "result.json", result)
        except OSError as exc:
            result = unstored(result, run.directory(out) / "result.json", exc)
    return result


def stored_result(run: Run, out: Path, retry_failed: bool = False) -> dict | None:
    """The stored result of a finished run (failed runs count as finished unless ``retry_failed``), else None."""
    result = read_result(run.directory(out))
    if result is None or (retry_failed and result.get("status") != "ok"):
        return None
    return result


def unique_runs(runs: list[Run]) -> list[Run]:
    """``runs`` without repeated runs (trials that drew the same hparams), in order."""
    return list({run.run_id: run for run in runs}.values())


def runs_to_do(runs: list[Run], out: Path, force: bool = False, retry_failed: bool = False) -> list[Run]:
    """The runs without a stored result (all of them with ``force``), in order, each once."""
    return [run for run in unique_runs(runs) if force or stored_result(run, out, retry_failed) is None]


def preflight(pending: list[Run], out: Path | None = None) -> None:
    """Before anything trains, if anything will: build the sweep's dataset (cached for in-process runs), check
    that ``out`` and every run's folder can be written, and set up each distinct configuration once on CPU
    (model and method: a constructor that cannot be called, stages that do not fit the budget, missing
    pretrained weights), so that each of these is one BenchError rather than failed runs."""
    if not pending:
        return
    if any("tensorboard" in run.log for run in pending):
        check_tensorboard()
    first = pending[0]
    data = build_dataset(first.spec.dataset, first.spec.data_options, first.execution.data_root)
    if out is not None:
        check_writable(out)
        for run in pending:
            check_run_paths(run.directory(out))
    for run in {run.spec.config_id: run for run in pending}.values():
        try:
            with run_settings(run.execution):
                build_method(run.spec, data)
        except BenchError:
            raise
        except Exception as exc:
            problem = error_line(exc)
            raise BenchError(f"method {run.spec.method} cannot be set up with these settings: {problem}") from None
