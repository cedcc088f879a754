"""Scan one setting over values: methods × seeds × values on the offline datasets at their default budgets, each
value an ordinary ``bench run`` sweep (so the scan is resumable), summarised by *validation* worst-group accuracy
(the selection metric: test numbers are printed beside it, never used to choose), validation balanced accuracy,
the lowest per-group share of live latent units, the seeds in which a group falls below 40% test accuracy, and
whether each latent-space mechanism acts, from the run's log.jsonl (validation data only):

- ``gamma_ratio``: mr2's largest class margin γ over its smallest at the last evaluation (1 = every class alike),
  and ``gamma_rho``: Spearman's correlation of the γ with the classes' validation error there (MR²'s premise:
  harder classes, larger margins);
- ``align_change``: nc-frozen's alignment term at the last evaluation over the first (nan where it is 0 from the
  start: no class has two groups to align);
- ``fit_change``: anchor-w2's W2 fit term at the last evaluation over the first.

    # the latent comparison (issue 12)
    python studies/scan.py --key train.latent --values relu,linear,layernorm,relu-bias1 \\
        --methods erm,anchor-w2,mr2,nc-frozen --datasets digits-hetero --seeds 0,1,2 --out results/latent-study
    # a method default
    python studies/scan.py --key dro-lt.eps --values 1,5,20,50 --methods dro-lt --out results/scan-dro-lt
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from benchmark.runs.store import iter_results, run_dir

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
    """The finished runs in every value's results folder (``out/<value>/``), read through the store, each with the
    folder it is in."""
    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        yield from ((folder, r) for r in iter_results(folder) if r["status"] == "ok")


def ratio(last: float, first: float) -> float:
    """last / first, nan where first is 0."""
    return last / first if first else math.nan


def mechanisms(log: Path) -> dict:
    """The mechanism columns of one run (module docstring) from its log.jsonl; nan where the method logs none."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    first, last = records[0]["logs"], records[-1]["logs"]
    found = {"gamma_ratio": math.nan, "gamma_rho": math.nan, "align_change": math.nan, "fit_change": math.nan}
    if "gamma" in last:
        gamma = last["gamma"]
        error = [100 - acc for acc in records[-1]["val"]["classes"].values()]
        found["gamma_ratio"] = max(gamma) / min(gamma)
        found["gamma_rho"] = float(spearmanr(gamma, error).statistic)
    if "align" in last:
        found["align_change"] = ratio(last["align"], first["align"])
    if "fit" in last:
        found["fit_change"] = ratio(last["fit"], first["fit"])
    return found


def summary(out: Path, key: str) -> pd.DataFrame:
    """Per (dataset, value, method): means over seeds at the selected epoch of val and test wga, acc and balanced
    (mean-group) accuracy, the lowest per-group share of live latent units, the mechanism columns, the number of
    seeds and of collapsed seeds."""
    rows = []
    for folder, r in scanned_runs(out):
        live = [v for v in (r.get("live_units") or {}).values() if v is not None]
        log = run_dir(folder, r["dataset"], r["method"], r["run_id"]) / "log.jsonl"
        rows.append({
            "dataset": r["dataset"], "value": setting(r, key), "method": r["method"], "seed": r["seed"],
            "val_wga": r["val"]["wga"], "val_acc": r["val"]["acc"], "val_bal": r["val"]["mean_group_acc"],
            "test_wga": r["test"]["wga"], "test_acc": r["test"]["acc"], "test_bal": r["test"]["mean_group_acc"],
            "min_live": min(live) if live else None, "collapsed": r["test"]["wga"] < COLLAPSED, **mechanisms(log),
        })
    frame = pd.DataFrame(rows).rename(columns={"value": key})
    grouped = frame.groupby(["dataset", key, "method"])
    accuracies = ["val_wga", "val_acc", "val_bal", "test_wga", "test_acc", "test_bal"]
    ratios = ["gamma_ratio", "gamma_rho", "align_change", "fit_change"]
    table = grouped[[*accuracies, "min_live", *ratios]].mean()
    table = table.round({**dict.fromkeys(accuracies, 1), "min_live": 2, **dict.fromkeys(ratios, 3)})
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
