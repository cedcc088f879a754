"""The default suite timed end to end (``bench time-suite``): ``bench run --methods all --dataset digits-hetero
--seeds 0,1,2 --workers 2`` (the default budget; extra ``bench run`` arguments come last, and ``--workers`` or
``--workers-per-device`` among them replace ``--workers 2``) in a child process into a fresh results folder, the
resident memory of its whole process tree (the sweep and its workers) sampled every 0.2 s, then a CSV of the runs'
cost and the sweep's efficiency (:mod:`benchmark.report.efficiency`). Linux only (/proc)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchmark.report.efficiency import FIELDS, efficiency, suite_rows
from benchmark.runs.store import iter_results, run_dir

COMMAND = ["run", "--methods", "all", "--dataset", "digits-hetero", "--seeds", "0,1,2"]
PARALLEL = ["--workers", "2"]  # unless the extra arguments say how many run at once
SAMPLE_S = 0.2


@dataclass
class SuiteTiming:
    """A timed sweep: its wall time, the peak summed RSS of its process tree, its exit code, the workers it ran
    at once and :func:`~benchmark.report.efficiency.efficiency`'s shares of its worker time."""

    wall_s: float
    peak_rss_mb: float
    exit_code: int
    workers: int
    shares: dict


def suite_arguments(extra: list[str]) -> list[str]:
    """The ``bench`` arguments of the timed sweep: :data:`COMMAND`, :data:`PARALLEL` unless ``extra`` sets
    ``--workers`` or ``--workers-per-device``, then ``extra``."""
    parallel = [] if {"--workers", "--workers-per-device"} & set(extra) else PARALLEL
    return [*COMMAND, *parallel, *extra]


def tree_rss_mb(pid: int) -> float:
    """Summed resident memory of ``pid`` and all its descendants, from /proc."""
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def run_suite(out: Path, extra: list[str]) -> tuple[float, float, float, int]:
    """(start and end as wall-clock times, peak summed RSS in MB, exit code) of the sweep."""
    command = [sys.executable, "-m", "benchmark.cli", *suite_arguments(extra), "--out", str(out)]
    start = time.time()
    proc = subprocess.Popen(command)
    peak = 0.0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(SAMPLE_S):
            peak = max(peak, tree_rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    return start, time.time(), peak, code


def run_span(out: Path, result: dict) -> tuple[float, float]:
    """The wall-clock times a finished run's config.json and result.json were written."""
    folder = run_dir(out, result["dataset"], result["method"], result["run_id"])
    return (folder / "config.json").stat().st_mtime, (folder / "result.json").stat().st_mtime


def time_suite(out: Path, csv_path: Path, extra: list[str]) -> SuiteTiming:
    """Empty ``out``, time the sweep of :func:`suite_arguments` into it and write ``csv_path``
    (:func:`~benchmark.report.efficiency.suite_rows` of its finished runs)."""
    shutil.rmtree(out, ignore_errors=True)
    start, end, peak, code = run_suite(out, extra)
    results = [r for r in iter_results(out) if r.get("status") == "ok"]
    spans = [run_span(out, r) for r in results]
    workers = max((r.get("parallel_runs", 1) for r in results), default=1)  # as the sweep counted them
    shares = efficiency(results, spans, start, end, workers)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(suite_rows(results, end - start, peak, shares["efficiency"]))
    return SuiteTiming(end - start, peak, code, workers, shares)
