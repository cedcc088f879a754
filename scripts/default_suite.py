"""Time the default suite end to end and write a CSV for tracking.

    python scripts/default_suite.py --out /tmp/suite --csv scripts/default_suite.csv [-- extra bench run args]

Runs ``bench run --methods all --dataset digits-hetero --seeds 0,1,2 --workers 2`` (the default budget; the extra
arguments come last, and ``--workers`` or ``--workers-per-device`` among them replace ``--workers 2``) into a
fresh results folder, samples the resident memory of the whole process tree (the sweep and its workers) every
0.2 s, and writes one row per run (wall and training time, steps/s, the run's process peak RSS, test metrics)
and a final ``total`` row (the sweep's wall time and the peak summed RSS of the tree), and prints the sweep's
efficiency: the runs' pure training time (steps, epoch hooks, batch drawing) over wall time × workers, and where
the rest went (stage setup, evaluation and model building inside the runs; outside the trainer, from the times
each run's files were written: dataset builds and file writing, startup, handing over runs, the idle end; see
:func:`efficiency`). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

COMMAND = ["run", "--methods", "all", "--dataset", "digits-hetero", "--seeds", "0,1,2"]
PARALLEL = ["--workers", "2"]  # unless the extra arguments say how many run at once


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
        while not stop.wait(0.2):
            peak = max(peak, tree_rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    stop.set()
    sampler.join()
    return start, time.time(), peak, code


def efficiency(results: list[dict], spans: list[tuple[float, float]], start: float, end: float, workers: int):
    """The worker-seconds of the sweep (wall × workers) split into shares; ``efficiency`` is the training share.

    Inside the trainer: the runs' training, their stages' setup, and the rest (evaluation, moving data, building
    the model). Outside it, from each run's ``spans`` (the wall-clock times its config.json and result.json were
    written): "run files and dataset" (the part of each span the trainer did not take: building or reusing the
    dataset, writing the files), "startup" (from the sweep's start to each worker's first run: the sweep's
    imports and planning, process start, the workers' imports), "idle at the end" (from each worker's last run
    to the sweep's exit: waiting for the other workers, the leaderboard) and "between runs" (the rest: handing
    runs to workers, reporting). Workers are not named in the results, so the first ``workers`` spans to start
    are taken as the workers' first runs and the last ``workers`` to end as their last. Runs trained together
    (``stacked_runs`` > 1, ``bench run --stack``) share their stack's clock, so each counts its times divided by
    the stack's size."""
    budget = (end - start) * workers
    share = [1 / r.get("stacked_runs", 1) for r in results]
    train = sum(r["train_time_s"] * w for r, w in zip(results, share))
    setup = sum(stage.get("setup_time_s", 0.0) * w for r, w in zip(results, share) for stage in r["stages"])
    inside = sum(r["wall_time_s"] * w for r, w in zip(results, share))
    spanned = sum((finish - begin) * w for (begin, finish), w in zip(spans, share))
    startup = sum(begin - start for begin in sorted(b for b, _ in spans)[:workers])
    idle = sum(end - finish for finish in sorted(f for _, f in spans)[-workers:])
    parts = {"training": train, "stage setup": setup, "evaluation and build": inside - train - setup}
    parts |= {"run files and dataset": spanned - inside, "startup": startup, "idle at the end": idle}
    parts["between runs"] = budget - spanned - startup - idle
    return {"efficiency": train / budget, **{name: value / budget for name, value in parts.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="results folder (emptied first)")
    parser.add_argument("--csv", type=Path, required=True, help="where to write the timings")
    args, extra = parser.parse_known_args()
    shutil.rmtree(args.out, ignore_errors=True)
    extra = [a for a in extra if a != "--"]
    start, end, peak, code = run_suite(args.out, extra)
    wall = end - start
    fields = ["method", "seed", "device", "wall_s", "train_s", "steps_per_s", "peak_rss_mb", "test_wga", "test_acc"]
    rows, results, spans = [], [], []
    for path in sorted(args.out.glob("digits-hetero/*/*/result.json")):
        r = json.loads(path.read_text())
        if r.get("status") != "ok":
            continue
        results.append(r)
        spans.append(((path.parent / "config.json").stat().st_mtime, path.stat().st_mtime))
        run = [r["method"], r["seed"], r["device"], r["wall_time_s"], r["train_time_s"], r["steps_per_s"]]
        rows.append(dict(zip(fields, [*run, r["peak_memory_mb"], r["test"]["wga"], r["test"]["acc"]])))
    workers = max((r.get("parallel_runs", 1) for r in results), default=1)  # as the sweep counted them
    shares = efficiency(results, spans, start, end, workers)
    train_s = sum(r["train_time_s"] / r.get("stacked_runs", 1) for r in results)
    rows.append({"method": "total", "wall_s": wall, "train_s": train_s})
    rows[-1] |= {"peak_rss_mb": peak, "efficiency": shares["efficiency"]}
    fields.append("efficiency")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"suite: {wall:.1f} s wall, peak RSS of the process tree {peak:.0f} MB, exit code {code}; {args.csv}")
    budget = wall * workers
    split = ", ".join(
        f"{name} {share:.0%} ({share * budget:.1f} s)" for name, share in shares.items() if name != "efficiency"
    )
    print(
        f"efficiency (training time / wall × workers): {shares['efficiency']:.2f}; worker time {budget:.1f} s: {split}"
    )
    sys.exit(code)


if __name__ == "__main__":
    main()
