"""Scan one setting over values: methods × seeds × values on the offline datasets at their default budgets, each
value an ordinary ``bench run`` sweep (so the scan is resumable), summarised by *validation* worst-group accuracy
(the selection metric: test numbers are printed beside it, never used to choose), the lowest per-group share of
live latent units, and the seeds in which a group falls below 40% test accuracy.

    # the latent comparison (issue 12)
    python studies/scan.py --key train.latent --values relu,linear,layernorm,relu-bias1 \\
        --methods erm,anchor-w2,mr2,nc-frozen --datasets digits-hetero --seeds 0,1,2 --out results/latent-study
    # a method default
    python studies/scan.py --key dro-lt.eps --values 1,5,20,50 --methods dro-lt --out results/scan-dro-lt
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

from benchmark.runs.store import iter_results

COLLAPSED = 40.0  # a test worst group below this counts as a collapsed seed


def sweep(out: Path, key: str, value: str, dataset: str, methods: str, seeds: str, workers: int, sets: list[str]):
    """One ``bench run`` of the methods with ``key=value`` (finished runs are skipped)."""
    command = [sys.executable, "-m", "benchmark.cli", "run", "--methods", methods, "--dataset", dataset,
               "--seeds", seeds, "--workers", str(workers), "--set", f"{key}={value}",
               *(x for s in sets for x in ("--set", s)), "--out", str(out / value)]
    subprocess.run(command, check=False, stdout=subprocess.DEVNULL)


def setting(result: dict, key: str):
    """The value of ``key`` (``train.*``, ``data.*`` or ``<method>.*``) a stored run used."""
    section, _, name = key.partition(".")
    where = {"train": result["train"], "data": result["data_options"]}.get(section, result["hparams"])
    return where.get(name)


def scanned_runs(out: Path):
    """The finished runs in every value's results folder (``out/<value>/``), read through the store."""
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        yield from (r for r in iter_results(folder) if r["status"] == "ok")


def summary(out: Path, key: str) -> pd.DataFrame:
    """Per (dataset, value, method): means over seeds at the selected epoch of val and test wga and acc, the lowest
    per-group share of live latent units, the number of seeds and of collapsed seeds."""
    rows = []
    for r in scanned_runs(out):
        live = [v for v in (r.get("live_units") or {}).values() if v is not None]
        rows.append({
            "dataset": r["dataset"], "value": setting(r, key), "method": r["method"], "seed": r["seed"],
            "val_wga": r["val"]["wga"], "val_acc": r["val"]["acc"], "test_wga": r["test"]["wga"],
            "test_acc": r["test"]["acc"], "min_live": min(live) if live else None,
            "collapsed": r["test"]["wga"] < COLLAPSED,
        })
    frame = pd.DataFrame(rows).rename(columns={"value": key})
    grouped = frame.groupby(["dataset", key, "method"])
    table = grouped[["val_wga", "val_acc", "test_wga", "test_acc", "min_live"]].mean()
    table = table.round({"val_wga": 1, "val_acc": 1, "test_wga": 1, "test_acc": 1, "min_live": 2})
    table["seeds"] = grouped["seed"].nunique()
    table["collapsed_seeds"] = grouped["collapsed"].sum()
    return table.reset_index()


def main() -> None:
    """Run one sweep per dataset and value (finished runs are skipped), then print (and write) the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="e.g. train.latent, mr2.lam, data.proj_noise")
    parser.add_argument("--values", required=True, help="comma-separated")
    parser.add_argument("--methods", default="erm")
    parser.add_argument("--datasets", default="digits-hetero,waterbirds-style,celeba-style")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="fixed settings, as bench run")
    parser.add_argument("--out", type=Path, default=Path("results/scan"))
    parser.add_argument("--csv", type=Path, help="write the summary here")
    args = parser.parse_args()
    for dataset in args.datasets.split(","):
        for value in args.values.split(","):
            sweep(args.out, args.key, value, dataset, args.methods, args.seeds, args.workers, args.sets)
    table = summary(args.out, args.key)
    if args.csv:
        table.to_csv(args.csv, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
