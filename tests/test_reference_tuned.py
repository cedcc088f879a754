"""The committed tuned reference (``bench reference``, :mod:`benchmark.tools.reference`): equal trial budgets,
two-phase tuning as specified, and reports that its ``bench report`` calls regenerate exactly from the committed
runs."""

from __future__ import annotations

import csv
import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import REFERENCE_METHODS, bench_in_process

from benchmark.report.frames import HEADLINE_NAMES, dataset_boards, headline
from benchmark.report.validity import pair_tests
from benchmark.runs.store import iter_results
from benchmark.tools.reference import CONTROLS, REFERENCE, report_arguments, report_groups

# one pytest-xdist worker takes the whole module, so the module-scoped `regenerated` is built once
pytestmark = pytest.mark.xdist_group("regenerated")

ROOT = Path(__file__).resolve().parents[1]
TUNED = ROOT / "reports" / "tuned"
RUNS = TUNED / "runs"
# datasets whose tuned sweep has finished and been reported (a sweep in progress has runs but no report yet)
DATASETS = sorted(p.parent.name for p in TUNED.glob("*/leaderboard.csv"))
TRIALS = 10
SEEDS = 10
GENERATED = ["leaderboard.csv", "leaderboard.md", "groups.csv", "cost.csv", "selection.csv", "validity.csv"]


def refuse(message: str) -> None:
    """The store's warning about a run it skips, as a test failure."""
    raise AssertionError(f"a committed run is unreadable: {message}")


def results_of(dataset: str) -> list[dict]:
    """Every committed run of ``dataset``, through the store (a corrupt, copied or outdated run fails the test)."""
    return list(iter_results(RUNS, dataset, warn=refuse))


def leaderboard(dataset: str) -> list[dict]:
    with (TUNED / dataset / "leaderboard.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_the_tuned_reference_and_its_control_are_committed():
    assert set(DATASETS) == set(REFERENCE + CONTROLS)
    assert "digits-hetero-spurious" in REFERENCE and "digits-hetero" in CONTROLS


def test_only_finished_runs_are_committed():
    """A sweep in progress leaves claims and partial runs in its folders; none may be committed (a fresh clone
    would see another sweep's claims). Checks what git tracks, so a sweep running here does not matter."""
    tracked = subprocess.run(["git", "ls-files", str(RUNS)], cwd=ROOT, capture_output=True, text=True, check=True)
    folders = defaultdict(set)
    for path in tracked.stdout.split():
        folder, name = path.rsplit("/", 1)
        folders[folder].add(name)
    assert folders, "no tuned runs tracked"
    for folder, names in folders.items():
        assert names == {"config.json", "log.jsonl", "result.json"}, (folder, names)


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_method_tunes_ten_trials_on_seed_0_and_runs_only_its_winner_on_the_other_seeds(dataset):
    """Seeds 0 to 9 for every method of a dataset (``bench reference``'s ten seeds)."""
    by_method: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for r in results_of(dataset):
        assert r["status"] == "ok", (r["method"], r["trial"], r.get("error"))
        by_method[r["method"]][r["config_id"]].add((r["trial"], r["seed"]))
        assert (RUNS / dataset / r["method"] / r["run_id"] / "log.jsonl").is_file()
    assert set(by_method) == set(REFERENCE_METHODS)
    board = {row["method"]: row for row in leaderboard(dataset)}
    assert {int(row["n_seeds"]) for row in board.values()} == {SEEDS}
    for method, configs in by_method.items():
        assert sorted(trial for runs in configs.values() for trial, seed in runs if seed == 0) == list(range(TRIALS))
        on_all_seeds = [config for config, runs in configs.items() if {seed for _, seed in runs} == set(range(SEEDS))]
        assert len(on_all_seeds) == 1, (method, "exactly one trial, the winner, runs on every seed")
        row = board[method]
        assert (row["trials"], row["tuned_on"]) == (str(TRIALS), "0"), method
        assert row["family_id"] == next(c for c, runs in configs.items() if (0, 0) in runs), method
        assert int(row["trial"]) == next(iter(configs[on_all_seeds[0]]))[0], method


@pytest.mark.parametrize("dataset", DATASETS)
def test_each_winner_has_its_methods_best_val_worst_group_accuracy_on_the_tuning_seed(dataset):
    seed0: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for r in results_of(dataset):
        if r["seed"] == 0:
            seed0[r["method"]].append((r["val"]["wga"], r["val"]["acc"], -r["trial"]))
    for row in leaderboard(dataset):
        assert -max(seed0[row["method"]])[2] == int(row["trial"]), row["method"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_run_of_a_dataset_takes_the_same_optimizer_steps(dataset):
    assert len({r["steps"] for r in results_of(dataset)}) == 1


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """The tuned datasets' reports by ``bench reference``'s own ``bench report`` calls (the reference together, each
    control on its own), tables only (``--formats`` given last wins)."""
    out = tmp_path_factory.mktemp("tuned")
    for group in report_groups(DATASETS):
        proc = bench_in_process(*report_arguments(RUNS, group, out), "--formats", "csv,md,tex")
        assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("dataset", DATASETS)
def test_committed_tuned_reports_regenerate_from_committed_runs(regenerated, dataset):
    for name in GENERATED:
        assert (regenerated / dataset / name).read_text() == (TUNED / dataset / name).read_text(), name


def test_committed_combined_tables_and_validity_regenerate_over_the_reference_only(regenerated):
    for name in ("combined.csv", "combined.md", "combined.tex", "validity.csv", "validity.md"):
        assert (regenerated / name).read_text() == (TUNED / name).read_text(), name
    with (TUNED / "validity.csv").open() as handle:
        covered = {row["dataset"] for row in csv.DictReader(handle)}
    assert covered == set(REFERENCE)


def test_readme_states_each_datasets_separations_as_the_committed_runs_give_them():
    """README's table of pairs that differ after Holm and rows above ERM (the pair tests behind validity.md), in each
    dataset's headline metric, digits-lt also by worst-class accuracy, and the control."""
    readme = (ROOT / "README.md").read_text()
    for dataset, metric in [*((d, None) for d in REFERENCE), ("digits-lt", "wga"), *((d, None) for d in CONTROLS)]:
        significant, pairs, above, tested = holm_separations(dataset, metric)
        name = f"`{dataset}`" + (" (control)" if dataset in CONTROLS else "")
        row = f"| {name} | {HEADLINE_NAMES[tested]} | {significant} of {pairs} | {', '.join(above) or 'none'} |"
        assert row in readme, row


def test_readme_leads_with_the_tuned_tables():
    readme = (ROOT / "README.md").read_text()
    assert "bench reference" in readme
    for dataset in DATASETS:
        table = (TUNED / dataset / "leaderboard.md").read_text().split("\n\n")[0].strip()
        assert table in readme, dataset
        assert readme.index(table) < readme.index("defaults, not tuned"), dataset
    assert (TUNED / "combined.md").read_text().split("\n\n")[1].strip() in readme


def holm_separations(dataset: str, metric: str | None = None) -> tuple[int, int, list[str], str]:
    """The dataset's pairs of leaderboard rows that differ in the test ``metric`` (by default its headline) after
    Holm (:func:`pair_tests` on the committed runs, as in validity.md), all pairs, the rows among them significantly
    above ERM, and the metric."""
    runs, board = dataset_boards(list(iter_results(RUNS, dataset)), "val-wga")[dataset]
    pairs = pair_tests(runs, board, metric=metric)
    hits = list(pairs.loc[pairs["significant"], ["a", "b", "diff"]].itertuples(index=False))
    above = [b for a, b, d in hits if a == "erm" and d < 0] + [a for a, b, d in hits if b == "erm" and d > 0]
    return len(hits), len(pairs), above, metric or headline(runs.columns)


def test_readme_names_the_commits_the_tuned_runs_come_from():
    commits = defaultdict(lambda: defaultdict(int))
    for path in sorted(RUNS.glob("*/*/*/result.json")):
        result = json.loads(path.read_text())
        commits[result["dataset"]][(result.get("environment") or {}).get("git_commit") or "none"] += 1
    stated = "; ".join(
        f"{dataset} " + ", ".join(f"{commit[:7]} ({n})" for commit, n in sorted(counts.items()))
        for dataset, counts in sorted(commits.items())
    )
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert stated in readme, stated
