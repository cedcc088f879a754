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


def execute_run(run: Run, out: Path, progress: Progress | None = None) -> dict:
    """Train one run and write config.json, log.jsonl and (last, atomically) result.json; return the result.

    Any exception inside the run, and a ``SystemExit`` from a plugin, is recorded as ``status: failed`` with a
    one-line error, so that the sweep goes on; a file that cannot be written (a full disk) fails the run without
    raising (``unstored``: the result is returned, not on disk). An interrupt (KeyboardInterrupt, a kill) leaves
    no result.json, so the run is redone next time.
    """
    progress = progress or Progress()
    directory = run.directory(out)
    header, how = run.header(), run.execution
    try:
        remove_partial_writes(directory)
        write_json_atomic(directory / "config.json", {**header, "device": how.device, "data_root": how.data_root})
        log = RunLog(directory / "log.jsonl")
    except OSError as exc:
        return unstored({**header, "status": "failed"}, directory, exc)

    loggers = [log]

    def on_eval(record: dict) -> None:
        for logger in loggers:
            logger(record)
        progress.evaluated(run, record)

    try:
        if "tensorboard" in run.log:
            loggers.append(TensorBoardLog(directory / "tensorboard"))
        load_plugins(how.plugins)
        data = build_dataset(run.spec.dataset, run.spec.data_options, how.data_root)
        keep = best_so_far(run.select) if run.save_model else None
        trained = train(run.spec, data, on_eval, how, keep)
        result = {"status": "ok", **selected(trained, run.select), "parallel_runs": how.parallel}
        if run.save_model:
            save_state(result.pop("state_dict"), directory / MODEL_FILE)
            result["model_file"] = MODEL_FILE
    except SystemExit as exc:  # a plugin calling sys.exit must not end the sweep
        result = {**failure(exc), "error": f"the run called sys.exit({exc.code!r})"}
    except Exception as exc:  # recorded, so that the sweep goes on
        result = failure(exc)
    finally:
        for logger in loggers:
            logger.close()
    result = {**header, **result, "environment": environment(torch.device(result.get("device", "cpu")))}
    result |= {"log_error": log.error} if log.error else {}
    try:
        write_json_atomic(directory / "result.json", result)
    except OSError as exc:
        return unstored(result, directory / "result.json", exc)
    return result


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
