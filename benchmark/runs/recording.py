"""One run's files while it trains and when it ends: config.json, log.jsonl (and any extra loggers), the kept
model, and result.json, written last and atomically, with a one-line error for a run that failed."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import torch

from benchmark.core.selection import selected
from benchmark.runs.environment import environment
from benchmark.runs.events import Evaluated, Listener, RunFinished, ignore
from benchmark.runs.spec import Run
from benchmark.runs.store import RunLog, remove_partial_writes, write_json_atomic
from benchmark.runs.tensorboard_log import TensorBoardLog

MODEL_FILE = "model.pt"


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


def save_state(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then an atomic rename."""
    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


class RunRecorder:
    """One run's files while it trains: config.json and log.jsonl (with any extra loggers) from the start,
    result.json, written last and atomically, at the end (:meth:`finish`). Its events (:class:`Evaluated`, then
    :class:`RunFinished`) go to the run's loggers and to ``listener``. ``unstored`` holds the failed result when the
    run's folder could not be written (a full disk); the run then does not train."""

    def __init__(self, run: Run, out: Path, listener: Listener = ignore):
        self.run, self.listener = run, listener
        self.directory, self.header = run.directory(out), run.header()
        self.loggers, self.unstored, self.log = [], None, None
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
        """The engine's callback after each evaluation: an :class:`Evaluated` event to the loggers and the listener."""
        event = Evaluated(self.run, record)
        for listener in (*self.loggers, self.listener):
            listener(event)

    def done(self, result: dict) -> dict:
        """``result`` as the run's end: a :class:`RunFinished` event to the listener; returns it."""
        self.listener(RunFinished(self.run, result))
        return result

    def finish(self, outcome: dict | BaseException) -> dict:
        """The run's result from what training returned, or the exception that stopped it (a ``SystemExit`` from a
        plugin included), written to result.json; the loggers are closed and the run is :meth:`done`."""
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
            result = unstored(result, self.directory / "result.json", exc)
        return self.done(result)
