"""How much does tuning on one seed flatter that seed? For each dataset and method of a tuned sweep (trials on one
seed, the winner on every seed), the winner's test WGA on the seed it was chosen on against its mean over the
other seeds, and that seed's rank among all of the winner's seeds (1: the best).

The winner is chosen by val WGA on the tuning seed, so wherever val and test agree and the trials differ by chance,
that seed's test WGA is biased upwards; the leaderboards average it with the other seeds. ``--held-out DIR`` also
writes the reports (Markdown and CSV, with validity.md over the datasets) of the winners' runs on the other seeds
alone. Example (the committed reference):

    python scripts/tuning_bias.py --results reports/tuned/runs --held-out /tmp/held-out
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean

from benchmark.report import write_reports
from benchmark.store import iter_results


def tuning_split(records: list[dict]) -> tuple[int, list[dict]]:
    """Of one method's runs in a tuned sweep: the tuning seed (the seed the most configurations ran on, the lowest
    if several) and the winner's runs (the configuration that ran on the most seeds)."""
    configs = defaultdict(set)
    for r in records:
        configs[r["seed"]].add(r["config_id"])
    tuning_seed = max(sorted(configs), key=lambda seed: len(configs[seed]))
    ((winner, _),) = Counter(r["config_id"] for r in records).most_common(1)
    return tuning_seed, [r for r in records if r["config_id"] == winner]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("reports/tuned/runs"))
    parser.add_argument("--held-out", type=Path, help="write the reports of the winners' other seeds here")
    args = parser.parse_args()
    by_method = defaultdict(list)
    for r in iter_results(args.results):
        by_method[r["dataset"], r["method"]].append(r)
    print("| Dataset | Method | Tuning seed's test WGA | Other seeds' mean | Gap | Rank |")
    print("|---|---|---|---|---|---|")
    held_out = []
    for (dataset, method), records in sorted(by_method.items()):
        tuning_seed, winner = tuning_split(records)
        tuned = next(r["test"]["wga"] for r in winner if r["seed"] == tuning_seed)
        others = [r for r in winner if r["seed"] != tuning_seed]
        rest = mean(r["test"]["wga"] for r in others)
        rank = 1 + sum(r["test"]["wga"] > tuned for r in others)
        print(f"| {dataset} | {method} | {tuned:.1f} | {rest:.1f} | {tuned - rest:+.1f} | {rank} |")
        held_out += others
    if args.held_out:
        write_reports(held_out, args.held_out, formats=("md", "csv"))
        print(f"reports of the other seeds alone written to {args.held_out}")


if __name__ == "__main__":
    main()
