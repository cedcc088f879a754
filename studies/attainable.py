"""How high can each group get? The best validation accuracy of every group over a run's evaluations (its
training curve, read from log.jsonl), per dataset and method, as min / mean over seeds.

Under GroupDRO, which upweights the worst group, this is the attainable accuracy of docs/datasets.md: a group
that stays low even then is hard because of its features, not because it is rare. Example (the committed
reference runs):

    python studies/attainable.py --results reports/runs --methods erm,groupdro

In a tuned sweep's folder (trials on one seed, the winner on every seed), ``--winners`` keeps each method's runs of
the configuration trained on the most seeds, the winner's, instead of every trial's:

    python studies/attainable.py --results reports/tuned/runs --winners --methods anchor-w2,nc-frozen

Runs are found through the store (finished runs, each once); the curve is the run's log.jsonl, which holds every
stage's evaluations (result.json's history holds only the last stage's).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

from benchmark.runs.store import iter_results, run_dir


def best_per_group(log: Path) -> dict[str, float]:
    """Each group's best val accuracy over the evaluations recorded in one run's log.jsonl."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    groups = records[0]["val"]["groups"]
    return {g: max(r["val"]["groups"][g] for r in records if r["val"]["groups"][g] is not None) for g in groups}


def winner_runs(results: list[dict]) -> list[dict]:
    """The runs whose configuration (``config_id``) ran on the most seeds."""
    most = max((counts := Counter(r["config_id"] for r in results)), key=counts.get)
    return [r for r in results if r["config_id"] == most]


def finished_runs(folder: Path) -> dict[tuple[str, str], list[dict]]:
    """The finished runs under ``folder`` per (method, dataset), in path order."""
    found = defaultdict(list)
    for result in iter_results(folder):
        if result["status"] == "ok":
            found[result["method"], result["dataset"]].append(result)
    return found


def main() -> None:
    """Print each group's best val accuracy, min / mean over seeds, per method and dataset (module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("results"))
    parser.add_argument("--methods", default="erm,groupdro", help="comma-separated")
    parser.add_argument("--winners", action="store_true", help="only the configuration trained on the most seeds")
    args = parser.parse_args()
    finished = finished_runs(args.results)
    for method in args.methods.split(","):
        for dataset in sorted(dataset for known, dataset in finished if known == method):
            results = finished[method, dataset]
            seeds: dict[str, list[float]] = defaultdict(list)
            for result in winner_runs(results) if args.winners else results:
                log = run_dir(args.results, dataset, method, result["run_id"]) / "log.jsonl"
                for group, best in best_per_group(log).items():
                    seeds[group].append(best)
            cells = [f"{g} {min(v):.1f} / {sum(v) / len(v):.1f}" for g, v in seeds.items()]
            print(f"{dataset} {method} (best val accuracy, min / mean over seeds): " + "; ".join(cells))


if __name__ == "__main__":
    main()
