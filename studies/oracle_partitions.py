"""JM1 against JTT, both given the ground-truth partition (``oracle``: the minority groups' training samples in place
of an identified error set): Just Mix Once's Table 3 claims JM1 wins. Each dataset is one ordinary, resumable
``bench run`` of both methods at their defaults over the seeds; the summary pairs them by seed and reports, per
dataset, each method's mean worst-group accuracy (validation, which selects the epoch, and test), the mean paired
test difference JM1 − JTT with its standard deviation, and a paired t-test.

    python studies/oracle_partitions.py --datasets waterbirds-style,celeba-style,digits-hetero-spurious --seeds 0,1,2 \\
        --out results/oracle-partitions --csv studies/oracle_partitions.csv
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmark.report.stats import paired_ttest
from benchmark.runs.store import iter_results

METHODS = ("jm1", "jtt")


def sweep(out: Path, dataset: str, seeds: str, workers: int) -> None:
    """One ``bench run`` of both methods with ``oracle`` on (finished runs are skipped)."""
    command = [sys.executable, "-m", "benchmark.cli", "run", "--methods", ",".join(METHODS), "--dataset", dataset,
               "--seeds", seeds, "--workers", str(workers), "--out", str(out),
               *(x for m in METHODS for x in ("--set", f"{m}.oracle=true"))]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)


def summary(out: Path) -> pd.DataFrame:
    """Per dataset: both methods' mean val and test worst-group accuracy and the paired test difference."""
    runs = pd.DataFrame([
        {"dataset": r["dataset"], "method": r["method"], "seed": r["seed"], "val_wga": r["val"]["wga"],
         "test_wga": r["test"]["wga"]}
        for r in iter_results(out) if r["status"] == "ok" and r["hparams"].get("oracle")
    ])
    rows = []
    for dataset, frame in runs.groupby("dataset"):
        wide = frame.pivot(index="seed", columns="method", values=["val_wga", "test_wga"])
        diff = wide["test_wga"]["jm1"] - wide["test_wga"]["jtt"]
        test = paired_ttest(wide["test_wga"]["jm1"], wide["test_wga"]["jtt"])
        rows.append({
            "dataset": dataset, "seeds": int(diff.notna().sum()),
            **{f"{m}_{split}": round(wide[split][m].mean(), 1) for m in METHODS for split in ("val_wga", "test_wga")},
            "test_diff_mean": round(diff.mean(), 1), "test_diff_sd": round(diff.std(), 1),
            "paired_p": round(test.pvalue, 3) if test else None,
            "per_seed_diff": " ".join(f"{d:+.1f}" for d in diff.dropna()),
        })
    return pd.DataFrame(rows)


def main() -> None:
    """Run the sweeps (finished runs are skipped), then print (and write) the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="waterbirds-style,celeba-style,digits-hetero-spurious")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/oracle-partitions"))
    parser.add_argument("--csv", type=Path, help="write the summary here")
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        sweep(args.out, dataset, args.seeds, args.workers)
    table = summary(args.out)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
