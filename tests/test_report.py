"""Leaderboards: mean ± std over seeds, best bold / second underlined, one row per configuration."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmark.core.metrics import group_metrics
from benchmark.report.files import write_reports


def fake_result(
    method: str, seed: int, correct: list[int], config_id: str | None = None, status: str = "ok", dataset: str = "toy"
) -> dict:
    """A stored run with one evaluation of two groups of 10 samples; its own configuration is its sweep family."""
    metrics = group_metrics(correct, [10, 10], ["g0", "g1"])
    return {
        "status": status,
        "dataset": dataset,
        "method": method,
        "config_id": config_id or f"cfg-{method}",
        "family_id": config_id or f"cfg-{method}",
        "trial": 0,
        "hparams": {},
        "run_id": f"{dataset}-{method}-{seed}-{config_id}",
        "seed": seed,
        "select": "val-wga",
        "val": metrics,
        "test": metrics,
        "history": [{"epoch": 1, "val": metrics, "test": metrics}],
        "steps": 10,
        "stages": [{"name": "train", "steps": 10}],
        "train_time_s": 1.0 + seed,
        "steps_per_s": 10.0,
        "peak_memory_mb": 100.0,
    }


def markdown_tables(md: str) -> list[list[str]]:
    """The lines of every Markdown table (consecutive lines starting with |) in ``md``."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables, current = [*tables, current], []
    return tables


def table_rows(md: str, which: int = 0) -> dict[str, list[str]]:
    """The ``which``-th Markdown table in ``md``: ``header`` -> its cells, and each method -> its other cells."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in markdown_tables(md)[which]]
    return {"header": rows[0], **{row[0]: row[1:] for row in rows[2:]}}


@pytest.fixture
def results():
    return [
        fake_result("erm", 0, [9, 5]),
        fake_result("erm", 1, [8, 6]),
        fake_result("erm", 2, [10, 4]),
        fake_result("groupdro", 0, [8, 7]),
        fake_result("groupdro", 1, [7, 8]),
        fake_result("jtt", 0, [1, 1], status="failed"),
    ]


def test_leaderboard_mean_std_over_seeds(tmp_path, results):
    board = write_reports(results, tmp_path)["toy"]
    erm = board.set_index("method").loc["erm"]
    assert erm["wga_mean"] == pytest.approx(np.mean([50, 60, 40]))
    assert erm["wga_std"] == pytest.approx(np.std([50, 60, 40], ddof=1))
    assert erm["acc_mean"] == pytest.approx(np.mean([70, 70, 70]))
    assert erm["n_seeds"] == 3
    assert "jtt" not in set(board["method"]), "failed runs are not aggregated"
    csv = pd.read_csv(tmp_path / "toy" / "leaderboard.csv")
    assert list(csv["method"]) == ["erm", "groupdro"]
    groups = pd.read_csv(tmp_path / "toy" / "groups.csv").set_index("method")
    assert groups.loc["groupdro", "g1"] == pytest.approx(75.0)


def test_markdown_and_latex_mark_best_and_second(tmp_path, results):
    write_reports(results, tmp_path)
    md = (tmp_path / "toy" / "leaderboard.md").read_text().split("per group")[0]
    row = {
        line.split("|")[1].strip(): line
        for line in md.splitlines()
        if line.startswith("| erm") or line.startswith("| groupdro")
    }
    assert "**70.0 ± 0.0**" in row["groupdro"]  # best wga: groupdro 70, 70; erm 50, 60, 40
    assert "<u>50.0 ± 10.0</u>" in row["erm"]
    assert "**10.0 ± 0.0**" in row["groupdro"] and "<u>40.0 ± 20.0</u>" in row["erm"]  # lowest delta_acc is best
    tex = (tmp_path / "toy" / "leaderboard.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"$\uparrow$" in tex and r"$\downarrow$" in tex
    assert r"$\mathbf{70.0 \pm 0.0}$" in tex and r"$\underline{50.0 \pm 10.0}$" in tex


def test_two_sweep_families_of_one_method_get_rows_labelled_by_what_differs(tmp_path):
    results = [fake_result("erm", 0, [9, 5], "aaaaaaaa"), fake_result("erm", 0, [5, 5], "bbbbbbbb")]
    board = write_reports(results, tmp_path)["toy"]
    assert sorted(board["label"]) == ["erm (aaaaaa)", "erm (bbbbbb)"], "nothing differs: the family ids"
    focal = [fake_result("focal", 0, [9, 5], "f1"), fake_result("focal", 0, [5, 5], "f2")]
    focal.append(fake_result("erm", 0, [1, 1]))
    focal[0]["hparams"], focal[1]["hparams"] = {"gamma": 1.0, "eps": 0.1}, {"gamma": 2.0, "eps": 0.1}
    focal[1]["train"] = {"lr": 0.002}
    board = write_reports(focal, tmp_path / "focal")["toy"]
    assert list(board["label"]) == ["focal (gamma=1.0, train.lr=None)", "focal (gamma=2.0, train.lr=0.002)", "erm"]
    assert json.loads(board["hparams"][0]) == {"eps": 0.1, "gamma": 1.0}, "the CSV keeps every hparam"


def test_nothing_to_report(tmp_path):
    assert write_reports([fake_result("erm", 0, [1, 1], status="failed")], tmp_path) == {}


def test_dataset_summaries_join_the_leaderboard(tmp_path):
    results = []
    for seed, adj in enumerate((60.0, 70.0)):
        result = fake_result("erm", seed, [9, 5])
        result["test"] = {**result["test"], "adj_acc": adj}
        result["history"][0]["test"] = result["test"]
        results.append(result)
    board = write_reports(results, tmp_path)["toy"]
    assert board.loc[0, "adj_acc_mean"] == pytest.approx(65.0)
    md = (tmp_path / "toy" / "leaderboard.md").read_text()
    assert "Adj-acc ↑" in md.splitlines()[0] and "65.0 ± 7.1" in md
    assert r"Adj-acc $\uparrow$" in (tmp_path / "toy" / "leaderboard.tex").read_text()


def test_cost_table_has_mean_and_std_over_seeds(tmp_path, results):
    write_reports(results, tmp_path)
    cost = pd.read_csv(tmp_path / "toy" / "cost.csv").set_index("method")
    assert cost.loc["erm", "train_time_s_mean"] == pytest.approx(2.0)  # 1 + seed for seeds 0, 1, 2
    assert cost.loc["erm", "train_time_s_std"] == pytest.approx(1.0)
    assert cost.loc["groupdro", "peak_memory_mb_mean"] == pytest.approx(100.0)
    md = (tmp_path / "toy" / "leaderboard.md").read_text()
    assert "| erm | 10 | train 10 | 2.0 ± 1.0 | 10.0 ± 0.0 | 100.0 ± 0.0 |" in md
    tex = (tmp_path / "toy" / "cost.tex").read_text()
    assert r"erm & 10 & train 10 & $2.0 \pm 1.0$ & $10.0 \pm 0.0$ & $100.0 \pm 0.0$ \\" in tex


def test_a_datasets_report_has_only_its_own_metrics_and_groups(tmp_path):
    """Reporting two datasets together gives each the same files as reporting it alone."""
    waterbirds = fake_result("erm", 0, [9, 5], dataset="wb")
    waterbirds["test"] = {**waterbirds["test"], "adj_acc": 60.0}
    waterbirds["history"][0]["test"] = waterbirds["test"]
    waterbirds["history"][0]["live_units"] = {"g0": 1.0, "g1": 0.5}  # per-group columns only this dataset has
    waterbirds["group_sizes"] = {"test": {"g0": 10, "g1": 10}}
    together = write_reports([waterbirds, fake_result("erm", 0, [9, 5], dataset="other")], tmp_path / "both")
    write_reports([fake_result("erm", 0, [9, 5], dataset="other")], tmp_path / "alone")
    assert "adj_acc_mean" in together["wb"] and "adj_acc_mean" not in together["other"]
    for name in ("leaderboard.csv", "groups.csv", "leaderboard.md"):
        assert (tmp_path / "both/other" / name).read_text() == (tmp_path / "alone/other" / name).read_text(), name


def test_the_leaderboard_says_what_each_method_read_in_training_where_runs_record_it(tmp_path, results):
    old = write_reports(results, tmp_path / "old")["toy"]
    assert "labels" not in old and "Labels read" not in (tmp_path / "old" / "toy" / "leaderboard.md").read_text()
    tiers = {"erm": "classes", "groupdro": "training groups"}
    recorded = [{**r, "labels": tiers.get(r["method"], "classes")} for r in results]
    board = write_reports(recorded, tmp_path / "new")["toy"].set_index("method")
    assert board["labels"].to_dict() == tiers
    rows = table_rows((tmp_path / "new" / "toy" / "leaderboard.md").read_text())
    assert rows["header"][:2] == ["Method", "Labels read"] and rows["groupdro"][0] == "training groups"
    assert r"\begin{tabular}{llccc" in (tmp_path / "new" / "toy" / "leaderboard.tex").read_text()


def long_tailed(method: str, seed: int, correct: list[int]) -> dict:
    """A run of a long-tailed dataset: its results report the Many/Medium/Few buckets (here: group 0 is Many, group
    1 Few)."""
    result = fake_result(method, seed, correct, dataset="lt")
    test = result["test"]
    result["test"] = {**test, "many": test["groups"]["g0"], "medium": None, "few": test["groups"]["g1"]}
    result["history"][0]["test"] = result["test"]
    return result


def test_a_long_tailed_dataset_leads_with_and_tests_balanced_accuracy(tmp_path):
    """Balanced accuracy (mean over the class groups) is the headline where runs report Many/Medium/Few: first
    column, dagger, p-value column, validity and the combined table; worst-group accuracy stays a column."""
    corrects = {"erm": ([10, 2], [10, 3], [10, 2]), "lt": ([7, 7], [8, 7], [7, 8]), "wc": ([6, 6], [6, 6], [6, 6])}
    results = [long_tailed(m, seed, c) for m, seeds in corrects.items() for seed, c in enumerate(seeds)]
    # a dataset ranked by worst-group accuracy
    results += [fake_result(m, seed, c) for m, c in (("erm", [9, 5]), ("groupdro", [8, 7])) for seed in range(2)]
    boards = write_reports(results, tmp_path)
    md = (tmp_path / "lt" / "leaderboard.md").read_text()
    rows = table_rows(md)
    assert rows["header"][1:5] == ["Mean-group ↑", "Many ↑", "Medium ↑", "Few ↑"] and "WGA ↑" in rows["header"]
    assert rows["lt"][0] == "**73.3 ± 2.9**†" and rows["wc"][0] == "60.0 ± 0.0", "ranked and tested on balanced acc"
    assert rows["erm"][rows["header"].index("WGA ↑") - 1] == "23.3 ± 5.8", "worst-group accuracy stays a column"
    assert "higher mean test balanced accuracy than erm" in md
    assert "mean_group_acc_p_vs_erm" in boards["lt"] and "wga_p_vs_erm" not in boards["lt"]
    assert "wga_p_vs_erm" in boards["toy"]
    assert "differ in test balanced accuracy" in (tmp_path / "lt" / "validity.md").read_text()
    assert "differ in test WGA" in (tmp_path / "toy" / "validity.md").read_text()
    combined = table_rows((tmp_path / "combined.md").read_text())
    assert combined["header"][1:] == ["lt Mean-group ↑", "toy WGA ↑"]
    assert combined["lt"][0] == "**73.3 ± 2.9**"


def test_a_method_that_was_not_applicable_shows_its_reason_and_no_number(tmp_path, results):
    """A run records why its method's premise failed: its row is n/a in every table and format (on every seed, when
    one seed's run says so), the reason stands under the table, and validity compares only the other rows."""
    reason = "its class margins did not act"
    results = [*results, *(fake_result("mr2", seed, [10, 10]) for seed in range(3))]
    results[-1]["not_applicable"] = reason  # seed 2 only: the row is one claim
    results += [fake_result(m, 0, [9, 5], dataset="other") for m in ("erm", "mr2")]
    boards = write_reports(results, tmp_path, formats=("csv", "md", "tex", "html"))
    board = boards["toy"].set_index("method")
    assert board.loc["mr2", "not_applicable"] == reason and board["wga_mean"].isna().tolist() == [False, False, True]
    assert board.loc["erm", "not_applicable"] != board.loc["erm", "not_applicable"], "erm applies: NaN"
    md = (tmp_path / "toy" / "leaderboard.md").read_text()
    assert set(table_rows(md)["mr2"][:-2]) == {"n/a"} and set(table_rows(md, 1)["mr2"]) == {"n/a"}
    accuracies = md.split("Compute cost")[0]
    assert f"n/a: mr2: {reason}." in md and "100.0" not in accuracies, "the perfect runs' accuracy is shown nowhere"
    csv = pd.read_csv(tmp_path / "toy" / "leaderboard.csv").set_index("method")
    assert np.isnan(csv.loc["mr2", "wga_mean"]) and csv.loc["mr2", "not_applicable"] == reason
    assert f"n/a: mr2: {reason}." in (tmp_path / "toy" / "leaderboard.tex").read_text()
    assert f"n/a: mr2: {reason}." in (tmp_path / "toy" / "report.html").read_text()
    validity = pd.read_csv(tmp_path / "toy" / "validity.csv")
    assert validity.loc[0, "rows"] == 2 and validity.loc[0, "pairs"] == 1, "erm and groupdro alone"
    combined = (tmp_path / "combined.md").read_text()
    assert table_rows(combined)["mr2"] == ["n/a", "50.0"] and f"toy, n/a: mr2: {reason}." in combined
