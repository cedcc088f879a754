"""Regenerate the tuned reference leaderboards (the README's lead tables) from nothing.

    python scripts/tuned_reference.py [--datasets digits-hetero-spurious,...] [--workers 2] [--out reports/tuned]
                                      [-- extra bench run args, e.g. --epochs 1 for a smoke test]

For each dataset in turn: ``bench run --methods all --dataset D --trials 10 --tune-seeds 0 --seeds 0-9``
into ``OUT/runs`` (every method draws 10 trials on seed 0, trial 0 being its defaults; each method's best
trial by val worst-group accuracy then runs on seeds 1 to 9: ten seeds, from the power computation of
``scripts/power.py``), then one ``bench report --results OUT/runs --dataset DATASETS --out OUT --select
val-wga,val-wca,oracle`` over the reference datasets among them (combined tables and validity over datasets
when there are several) and one such report per control dataset, on its own.

The reference is the four datasets whose tables the README's claims rest on. ``digits-hetero``, the former
default, is a control: trained and reported by the same protocol, outside the combined tables and the
cross-dataset validity, because no method separates from ERM on it (its worst group is bound by its sample
count and test noise, README "Datasets"); it shows what its successor, ``digits-hetero-spurious``, fixes.

Resumable: a rerun trains only what is missing, so a sweep killed midway or spread over several sessions picks
up where it stopped (stop it with Ctrl-C or ``kill -INT`` to record the time spent so far). Each invocation's
wall time per dataset and the runs it added are appended to ``OUT/regeneration.csv``; the regeneration time is
the sum of its ``wall_s`` column (invocations run one after another).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REFERENCE = ("digits-hetero-spurious", "digits-lt", "waterbirds-style", "celeba-style")
CONTROLS = ("digits-hetero",)
SWEEP = ["--methods", "all", "--trials", "10", "--tune-seeds", "0", "--seeds", "0-9", "--no-report"]
RULES = "val-wga,val-wca,oracle"


def finished_runs(runs: Path, dataset: str) -> int:
    """How many runs of ``dataset`` have a result.json under ``runs``."""
    return sum(1 for _ in (runs / dataset).glob("*/*/result.json"))


def report_groups(datasets: list[str]) -> list[list[str]]:
    """The datasets each ``bench report`` covers: the reference ones together, then each control on its own."""
    reference = [d for d in datasets if d not in CONTROLS]
    return ([reference] if reference else []) + [[d] for d in datasets if d in CONTROLS]


def bench(*args: str) -> int:
    """Run the ``bench`` CLI in this interpreter; its exit code."""
    return subprocess.call([sys.executable, "-m", "benchmark.cli", *args])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(REFERENCE + CONTROLS), help="comma-separated, in this order")
    parser.add_argument("--workers", default="2", help="parallel runs (bench run --workers)")
    parser.add_argument("--out", type=Path, default=Path("reports/tuned"))
    parser.add_argument("--no-report", action="store_true", help="train only")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]  # later options win: `-- --methods erm` narrows the sweep
    runs, log = args.out / "runs", args.out / "regeneration.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for dataset in args.datasets.split(","):
        before, started = finished_runs(runs, dataset), datetime.now(timezone.utc)
        start = time.perf_counter()
        try:
            if bench("run", *SWEEP, "--dataset", dataset, "--workers", args.workers, "--out", str(runs), *extra):
                failed.append(dataset)  # bench run has listed the failed runs; the other datasets still train
        except KeyboardInterrupt:  # Ctrl-C or kill -INT: the finished runs stay, the time so far is recorded
            failed.append(f"{dataset} (interrupted)")
        wall = time.perf_counter() - start
        new = not log.exists()
        with log.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["dataset", "started_utc", "wall_s", "workers", "runs_before", "runs_after"])
            row = [dataset, started.isoformat(timespec="seconds"), f"{wall:.1f}", args.workers, before]
            writer.writerow([*row, finished_runs(runs, dataset)])
        if failed and failed[-1].endswith("(interrupted)"):
            sys.exit(f"interrupted: {dataset}; rerun the same command to resume")
    for group in [] if args.no_report else report_groups(args.datasets.split(",")):
        report = ["report", "--results", str(runs), "--dataset", ",".join(group), "--out", str(args.out)]
        if bench(*report, "--select", RULES):
            failed.append(f"report of {','.join(group)}")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
