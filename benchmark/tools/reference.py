"""The tuned reference leaderboards (the README's lead tables), regenerated from nothing (``bench reference``).

For each dataset in turn: ``bench run --methods all --dataset D --trials 10 --tune-seeds 0 --seeds 0-9`` into
``OUT/runs`` (every method draws 10 trials on seed 0, trial 0 being its defaults; each method's best trial by val
worst-group accuracy then runs on seeds 1 to 9: ten seeds, from the power computation of ``bench power``), then one
``bench report --results OUT/runs --dataset DATASETS --out OUT --select val-wga,val-wca,oracle`` over the reference
datasets among them (combined tables and validity over datasets when there are several) and one such report per
control dataset, on its own.

The reference is the four datasets whose tables the README's claims rest on. ``digits-hetero``, the former default,
is a control: trained and reported by the same protocol, outside the combined tables and the cross-dataset
validity, because no method separates from ERM on it (its worst group is bound by its sample count and test noise,
README "Datasets"); it shows what its successor, ``digits-hetero-spurious``, fixes.

Resumable: a rerun trains only what is missing, so a sweep killed midway or spread over several invocations picks up
where it stopped (stop it with Ctrl-C or ``kill -INT`` to record the time spent so far). Each invocation's wall
time per dataset and the runs it added are appended to ``OUT/regeneration.csv``; the regeneration time is the sum
of its ``wall_s`` column (invocations run one after another).
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmark.core.errors import BenchError
from benchmark.runs.store import iter_results

REFERENCE = ("digits-hetero-spurious", "digits-lt", "waterbirds-style", "celeba-style")
CONTROLS = ("digits-hetero",)
SWEEP = ["--methods", "all", "--trials", "10", "--tune-seeds", "0", "--seeds", "0-9", "--no-report"]
RULES = "val-wga,val-wca,oracle"
LOG_COLUMNS = ["dataset", "started_utc", "wall_s", "workers", "runs_before", "runs_after"]


class Interrupted(Exception):
    """Ctrl-C (or ``kill -INT``) during a dataset's sweep: its finished runs and the time so far are recorded."""

    def __init__(self, dataset: str):
        super().__init__(dataset)
        self.dataset = dataset


def finished_runs(runs: Path, dataset: str) -> int:
    """How many runs of ``dataset`` have finished under ``runs`` (read through the store: each run once)."""
    return sum(1 for _ in iter_results(runs, dataset))


def check_datasets(datasets: list[str], extra: list[str]) -> None:
    """A BenchError before anything trains unless every name is a registered dataset (the built-ins, installed
    plugins and any ``--plugin`` among the extra ``bench run`` arguments), each named once."""
    from benchmark.core.registry import DATASETS
    from benchmark.plugins import load_plugins

    repeated = sorted({d for d in datasets if datasets.count(d) > 1})
    if repeated:
        raise BenchError(f"bad --datasets: {', '.join(repeated)} named twice")
    plugins = [value for flag, value in zip(extra, extra[1:]) if flag == "--plugin"]
    load_plugins(plugins + [a.removeprefix("--plugin=") for a in extra if a.startswith("--plugin=")])
    for dataset in datasets:
        DATASETS.get(dataset)


def report_groups(datasets: list[str]) -> list[list[str]]:
    """The datasets each ``bench report`` covers: the reference ones together, then each control on its own."""
    reference = [d for d in datasets if d not in CONTROLS]
    return ([reference] if reference else []) + [[d] for d in datasets if d in CONTROLS]


def report_arguments(runs: Path, group: list[str], out: Path) -> list[str]:
    """The ``bench report`` arguments of one of :func:`report_groups`' groups: its runs under ``runs`` reported into
    ``out`` under every rule of :data:`RULES`."""
    return ["report", "--results", str(runs), "--dataset", ",".join(group), "--out", str(out), "--select", RULES]


def bench(*args: str) -> int:
    """Run the ``bench`` CLI in a child process of this interpreter; its exit code."""
    return subprocess.call([sys.executable, "-m", "benchmark.cli", *args])


def record_invocation(log: Path, row: list) -> None:
    """Append one invocation's row of :data:`LOG_COLUMNS` to ``log`` (the header first if the file is new)."""
    new = not log.exists()
    with log.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(LOG_COLUMNS)
        writer.writerow(row)


def train_dataset(dataset: str, workers: int, out: Path, extra: list[str]) -> bool:
    """The two-phase sweep of ``dataset`` into ``out/runs`` (``extra``: further ``bench run`` arguments, which win
    over :data:`SWEEP`), its time and runs recorded in ``out/regeneration.csv``; whether every run succeeded.
    Raises :class:`Interrupted` after recording, on Ctrl-C."""
    runs = out / "runs"
    before, started = finished_runs(runs, dataset), datetime.now(timezone.utc)
    start, interrupted, code = time.perf_counter(), False, 0
    try:
        code = bench("run", *SWEEP, "--dataset", dataset, "--workers", str(workers), "--out", str(runs), *extra)
    except KeyboardInterrupt:  # the finished runs stay, the time so far is recorded
        interrupted = True
    wall = time.perf_counter() - start
    row = [dataset, started.isoformat(timespec="seconds"), f"{wall:.1f}", str(workers), before]
    record_invocation(out / "regeneration.csv", [*row, finished_runs(runs, dataset)])
    if interrupted:
        raise Interrupted(dataset)
    return code == 0


def regenerate(datasets: list[str], workers: int, out: Path, extra: list[str], report: bool = True) -> list[str]:
    """Train ``datasets`` in order (:func:`train_dataset`; a failed sweep does not stop the others), then write the
    reports of :func:`report_groups` into ``out`` unless ``report`` is false; what failed, one entry per dataset or
    report."""
    out.mkdir(parents=True, exist_ok=True)
    failed = [dataset for dataset in datasets if not train_dataset(dataset, workers, out, extra)]
    for group in report_groups(datasets) if report else []:
        if bench(*report_arguments(out / "runs", group, out)):
            failed.append(f"report of {','.join(group)}")
    return failed
