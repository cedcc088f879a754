"""How many seeds, and how large a worst group's test split, the reference needs to tell methods apart: a power
computation from committed runs.

    python scripts/power.py --results reports/tuned/runs [--datasets a,b] [--seeds 3,5,10,20] [--sizes 200,1000]

Per dataset, from its leaderboard's rows (each method's chosen trial, test WGA over seeds): the pooled standard
deviation of the pairs' paired differences (``benchmark.report.validity.paired_spread``), and the minimum detectable
difference (80% power, a paired t-test at Holm's strictest level: α = 0.05 over the number of pairs) at each number
of seeds. The evaluation's share of that spread: a model evaluated on n independent samples of its worst group
(accuracy p) scores with binomial variance p(1 − p)/n, so two models' paired difference carries at most
2 p(1 − p)/n of it (at most: models that err on the same samples carry less); the rest is training's. With the
worst group's n changed to each of ``--sizes`` (and to infinity), the detectable difference follows from the
training share plus the new evaluation share. p is the mean WGA over the rows, n the test size of the group that
is most often the worst. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import collections
import math
import sys
from pathlib import Path

from benchmark.report.frames import dataset_boards
from benchmark.report.stats import detectable_difference
from benchmark.report.validity import ALPHA, POWER, detectable_text, paired_spread
from benchmark.runs.store import iter_results


def worst_group(results: list[dict]) -> tuple[str, int]:
    """The group most often worst on test among ``results`` (each at its selected epoch) and its test size."""
    counts = collections.Counter(min(r["test"]["groups"], key=r["test"]["groups"].get) for r in results)
    group = counts.most_common(1)[0][0]
    return group, results[0]["group_sizes"]["test"][group]


def evaluation_variance(accuracy: float, size: float) -> float:
    """The most variance (points²) two models' evaluation on ``size`` samples at ``accuracy`` (a fraction) adds to
    their paired difference: twice the binomial variance; 0 for infinitely many samples."""
    return 0.0 if size == math.inf else 2 * accuracy * (1 - accuracy) / size * 100**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("reports/tuned/runs"))
    parser.add_argument("--datasets", default=None, help="comma-separated (default: every dataset folder)")
    parser.add_argument("--seeds", default="3,5,10,20")
    parser.add_argument("--sizes", default="1000", help="worst-group test sizes to compare with the current one")
    args = parser.parse_args()
    if not args.results.is_dir():
        print(f"results folder not found: {args.results}", file=sys.stderr)
        sys.exit(2)
    names = args.datasets.split(",") if args.datasets else sorted(p.name for p in args.results.iterdir() if p.is_dir())
    seeds = [int(s) for s in args.seeds.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    header = ["Dataset", "Worst group (test n)", "Mean WGA", "Pair SD", "Evaluation share"]
    header += [f"MDD {s} seeds" for s in seeds] + [f"MDD {seeds[-2]} seeds, n = {n}" for n in [*sizes, "∞"]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name in names:
        results = list(iter_results(args.results, name))
        if not results:
            continue
        runs, board = dataset_boards(results, "val-wga")[name]
        sd, _ = paired_spread(runs, board)
        chosen = set(runs["run_id"])
        group, n = worst_group([r for r in results if r["run_id"] in chosen])
        p = board["wga_mean"].mean() / 100
        pairs = len(board) * (len(board) - 1) // 2
        level = ALPHA / pairs
        training = max(sd**2 - evaluation_variance(p, n), 0.0)
        share = min(evaluation_variance(p, n) / sd**2, 1)
        cells = [name, f"{group} ({n})", f"{100 * p:.1f}", f"{sd:.1f}", f"{share:.0%}"]
        cells += [detectable_text(detectable_difference(sd, s, level, POWER), 1) for s in seeds]
        for size in [*sizes, math.inf]:
            spread = math.sqrt(training + evaluation_variance(p, size))
            cells.append(detectable_text(detectable_difference(spread, seeds[-2], level, POWER), 1))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
