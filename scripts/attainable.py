"""How high can each group get? The best validation accuracy of every group over a run's evaluations (its
training curve, read from log.jsonl), per dataset and method, as min / mean over seeds.

Under GroupDRO, which upweights the worst group, this is the attainable accuracy DATASETS.md asks about: a group
that stays low even then is hard because of its features, not because it is rare. Example (the committed
reference runs):

    python scripts/attainable.py --results reports/runs --methods erm,groupdro

In a tuned sweep's folder (trials on one seed, the winner on every seed), ``--winners`` keeps each method's runs of
the configuration trained on the most seeds, the winner's, instead of every trial's:

    python scripts/attainable.py --results reports/tuned/runs --winners --methods anchor-w2,nc-frozen
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def best_per_group(log: Path) -> dict[str, float]:
    """Each group's best val accuracy over the evaluations recorded in one run's log.jsonl."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    groups = records[0]["val"]["groups"]
    return {g: max(r["val"]["groups"][g] for r in records if r["val"]["groups"][g] is not None) for g in groups}


def winner_logs(logs: list[Path]) -> list[Path]:
    """The logs of the runs whose configuration (``config_id`` in result.json) ran on the most seeds."""
    configs = {log: json.loads(log.with_name("result.json").read_text())["config_id"] for log in logs}
    counts = defaultdict(int)
    for config in configs.values():
        counts[config] += 1
    most = max(counts, key=counts.get)
    return [log for log in logs if configs[log] == most]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--methods", default="erm,groupdro", help="comma-separated")
    parser.add_argument("--winners", action="store_true", help="only the configuration trained on the most seeds")
    args = parser.parse_args()
    for method in args.methods.split(","):
        for dataset in sorted(p.name for p in args.results.iterdir() if (p / method).is_dir()):
            seeds: dict[str, list[float]] = defaultdict(list)
            logs = sorted((args.results / dataset / method).glob("*/log.jsonl"))
            if args.winners:
                logs = winner_logs(logs)
            for log in logs:
                for group, best in best_per_group(log).items():
                    seeds[group].append(best)
            cells = [f"{g} {min(v):.1f} / {sum(v) / len(v):.1f}" for g, v in seeds.items()]
            print(f"{dataset} {method} (best val accuracy, min / mean over seeds): " + "; ".join(cells))


if __name__ == "__main__":
    main()
