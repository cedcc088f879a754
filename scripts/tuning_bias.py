"""How much does tuning on one seed flatter that seed? For each dataset and method of a tuned sweep (trials on one
seed, the winner on every seed), the winner's test WGA on the seed it was chosen on against its mean over the
other seeds, and that seed's rank among all of the winner's seeds (1: the best).

The winner is chosen by val WGA on the tuning seed, so wherever val and test agree and the trials differ by chance,
that seed's test WGA is biased upwards; the leaderboards average it with the other seeds. Example (the committed
reference):

    python scripts/tuning_bias.py --results reports/tuned/runs
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean

from attainable import winner_logs


def tuning_gap(results: list[Path]) -> tuple[float, float, int]:
    """From one method's result.json files: the winner's test WGA on the tuning seed (the seed the most
    configurations ran on), its mean over the winner's other seeds, and the tuning seed's rank among the winner's
    seeds."""
    records = {path: json.loads(path.read_text()) for path in results}
    configs = defaultdict(set)
    for r in records.values():
        configs[r["seed"]].add(r["config_id"])
    tuning_seed = max(sorted(configs), key=lambda seed: len(configs[seed]))
    winner = {records[path]["seed"]: records[path]["test"]["wga"] for path in winner_logs(results)}
    others = [wga for seed, wga in winner.items() if seed != tuning_seed]
    tuned = winner[tuning_seed]
    return tuned, mean(others), 1 + sum(wga > tuned for wga in others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("reports/tuned/runs"))
    args = parser.parse_args()
    print("| Dataset | Method | Tuning seed's test WGA | Other seeds' mean | Gap | Rank |")
    print("|---|---|---|---|---|---|")
    for dataset in sorted(p for p in args.results.iterdir() if p.is_dir()):
        for method in sorted(p for p in dataset.iterdir() if p.is_dir()):
            tuned, rest, rank = tuning_gap(sorted(method.glob("*/result.json")))
            print(f"| {dataset.name} | {method.name} | {tuned:.1f} | {rest:.1f} | {tuned - rest:+.1f} | {rank} |")


if __name__ == "__main__":
    main()
