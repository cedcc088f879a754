"""The checks before anything trains: the dataset builds, the results folder and every run's folder can be
written, and each distinct configuration's model and method can be set up."""

from __future__ import annotations

from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.data import build_dataset
from benchmark.runs.recording import error_line
from benchmark.runs.spec import Run
from benchmark.runs.store import check_run_paths, check_writable
from benchmark.runs.tensorboard_log import check_tensorboard
from benchmark.training.execution import run_settings
from benchmark.training.setup import build_method


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
