"""How much does tuning on one seed flatter that seed? For each dataset and method of a tuned sweep (trials on the
tuning seeds, the winner on every seed), the winner's mean test WGA on the seeds it was chosen on against its mean
over the other seeds, and the rank of the former among the winner's seeds (1: above all of the others).

The winner and its tuning seeds are the leaderboard's (``benchmark.core.selection.select_trials`` under val-wga: the
trial with the best mean val WGA on the seeds every trial ran on, ``tuned_on``). Wherever val and test agree and
the trials differ by chance, the tuning seeds' test WGA is biased upwards; the leaderboards average them with the
other seeds. ``--held-out DIR`` also writes the reports (Markdown and CSV, with validity.md over the datasets) of
the winners' other seeds alone. Example (the committed reference):

    python scripts/tuning_bias.py --results reports/tuned/runs --held-out /tmp/held-out
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.core.selection import FAMILY_KEYS, tuned_seeds
from benchmark.report.files import write_reports
from benchmark.report.frames import dataset_boards
from benchmark.runs.store import iter_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("reports/tuned/runs"))
    parser.add_argument("--held-out", type=Path, help="write the reports of the winners' other seeds here")
    args = parser.parse_args()
    results = list(iter_results(args.results))
    if not results:
        print(f"no finished runs under {args.results}", file=sys.stderr)
        sys.exit(2)
    print("| Dataset | Method | Tuning seeds' test WGA | Other seeds' mean | Gap | Rank |")
    print("|---|---|---|---|---|---|")
    held_out = set()
    for dataset, (runs, _) in sorted(dataset_boards(results, "val-wga").items()):
        for (_, method, _), rows in runs.groupby(FAMILY_KEYS, sort=True):
            tuning = tuned_seeds(rows["tuned_on"].iloc[0])
            on_tuning = rows["seed"].isin(tuning)
            tuned, others = rows.loc[on_tuning, "test_wga"].mean(), rows.loc[~on_tuning, "test_wga"]
            rest, rank = others.mean(), 1 + int((others > tuned).sum())
            print(f"| {dataset} | {method} | {tuned:.1f} | {rest:.1f} | {tuned - rest:+.1f} | {rank} |")
            held_out |= set(rows.loc[~on_tuning, "run_id"])
    if args.held_out:
        write_reports([r for r in results if r["run_id"] in held_out], args.held_out, formats=("md", "csv"))
        print(f"reports of the other seeds alone written to {args.held_out}")


if __name__ == "__main__":
    main()
