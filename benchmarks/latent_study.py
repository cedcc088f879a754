"""The latent comparison of issue 12: every candidate latent layer (``train.latent``) × methods × seeds on the
offline datasets at their default budgets, summarised by *validation* worst-group accuracy (the selection metric;
test numbers are printed beside it, never used to choose) and by the share of live latent units.

    python benchmarks/latent_study.py --out results/latent-study --csv benchmarks/latent_study.csv

Runs are ordinary ``bench run`` sweeps (one results folder per latent), so the study is resumable: re-running
skips finished runs and only rewrites the summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmark.models import LATENTS

METHODS = "erm,anchor-w2,mr2,nc-frozen"
DATASETS = "digits-hetero,waterbirds-style,celeba-style"


def sweep(out: Path, latent: str, dataset: str, methods: str, seeds: str, workers: int) -> None:
    """One ``bench run`` of the methods with the given latent (skips what is done)."""
    command = [sys.executable, "-m", "benchmark.cli", "run", "--methods", methods, "--dataset", dataset,
               "--seeds", seeds, "--workers", str(workers), "--set", f"train.latent={latent}",
               "--out", str(out / latent)]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)


def summary(out: Path) -> pd.DataFrame:
    """Per (dataset, latent, method): mean over seeds of val and test wga and acc at the selected epoch, the
    lowest per-group share of live latent units, and the seeds with a group at chance-like accuracy (< 40%)."""
    rows = []
    for path in sorted(out.glob("*/*/*/*/result.json")):
        r = json.loads(path.read_text())
        if r.get("status") != "ok":
            continue
        live = [v for v in (r.get("live_units") or {}).values() if v is not None]
        rows.append({
            "dataset": r["dataset"], "latent": r["train"]["latent"], "method": r["method"], "seed": r["seed"],
            "val_wga": r["val"]["wga"], "val_acc": r["val"]["acc"], "test_wga": r["test"]["wga"],
            "test_acc": r["test"]["acc"], "min_live": min(live) if live else None,
            "collapsed": r["test"]["wga"] < 40.0,
        })
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["dataset", "latent", "method"])
    table = grouped[["val_wga", "val_acc", "test_wga", "test_acc", "min_live"]].mean().round(3)
    table["seeds"] = grouped["seed"].nunique()
    table["collapsed_seeds"] = grouped["collapsed"].sum()
    return table.reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/latent-study"))
    parser.add_argument("--latents", default=",".join(LATENTS))
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--csv", type=Path, help="write the summary here")
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        for latent in args.latents.split(","):
            sweep(args.out, latent, dataset, args.methods, args.seeds, args.workers)
    table = summary(args.out)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
