"""Does a dataset's default budget let ERM converge? The rule of docs/datasets.md ("Default budgets"): over
3 seeds, ERM's selected evaluation (best validation worst-group accuracy) is not in the last 10% of the budget in
at least two of three seeds.

    python studies/budget_study.py --dataset celeba-style --epochs 60 --out results/budget-study

trains ERM once per seed for ``--epochs`` (a long budget) and applies the selection rule to every prefix of its
history: with a constant learning rate and one stream of batches, a run of B epochs is exactly the first B
epochs of the long run, so one long run per seed answers the question for every budget B. Prints, per budget,
each seed's selected epoch and whether the rule holds; ``--set`` passes settings through (e.g. the latent).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmark.core.selection import select_epoch
from benchmark.runs.store import iter_results

LAST_SHARE = 0.1  # the selected evaluation must not fall in the last 10% of the budget


def selected_epochs(history: list[dict], budget: int) -> int:
    """The epoch val-wga selection picks from the first ``budget`` evaluations."""
    return select_epoch(history[:budget], "val-wga")["epoch"]


def converged(epochs: list[int], budget: int) -> bool:
    """The rule: in at least two of the seeds the selected epoch is before the last 10% of the budget."""
    return sum(e <= budget - max(1, round(LAST_SHARE * budget)) for e in epochs) >= 2


def main() -> None:
    """Train ERM once per seed for ``--epochs`` and print, per shorter budget, the selected epochs and the rule."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default="10,15,20,25,30,40,50,60")
    parser.add_argument("--out", type=Path, default=Path("results/budget-study"))
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    command = [sys.executable, "-m", "benchmark.cli", "run", "--methods", "erm", "--dataset", args.dataset,
               "--seeds", args.seeds, "--epochs", str(args.epochs), "--workers", str(args.workers),
               "--out", str(args.out), *(x for s in args.sets for x in ("--set", s))]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    histories = {}
    for result in iter_results(args.out, args.dataset):
        if result["status"] == "ok" and result["method"] == "erm" and result["epochs"] == args.epochs:
            histories[result["seed"]] = result["history"]
    print(f"{args.dataset}: ERM val-wga selected epoch per seed {sorted(histories)} for each budget")
    for budget in (int(b) for b in args.budgets.split(",")):
        if budget > args.epochs:
            continue
        epochs = [selected_epochs(h, budget) for _, h in sorted(histories.items())]
        best = [max(r["val"]["wga"] for r in h[:budget]) for _, h in sorted(histories.items())]
        verdict = "converged" if converged(epochs, budget) else "NOT converged"
        print(f"  budget {budget:3d}: selected {epochs}  best val wga {[round(b, 1) for b in best]}  {verdict}")


if __name__ == "__main__":
    main()
