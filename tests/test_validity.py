"""Validity diagnostics (after Bell, Bouchacourt & Sagun): ERM failure, discriminative power with Holm's
correction, convergent validity by Kendall's tau, and the files the reports write."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_ind, ttest_rel
from test_report import fake_result

from benchmark.report.files import write_reports
from benchmark.report.stats import detectable_difference
from benchmark.report.validity import (
    convergent_validity,
    dataset_validity,
    erm_failure,
    holm,
    mean_tau,
    pair_tests,
    paired_spread,
    power_summary,
)

A = [50.0, 51.0, 49.0, 50.0, 50.0]
B = [90.0, 92.0, 89.0, 91.0, 90.0]  # far from A on every seed
C = [55.0, 100.0, 70.0, 95.0, 65.0]  # noisy: p = 0.035 against A uncorrected, 0.18 against B


def runs_of(wga: dict[str, list[float]], acc: float = 80.0, seeds: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """One run per seed of each method (its own sweep family) on dataset ``toy``."""
    rows = [
        {"dataset": "toy", "method": m, "family_id": f"f-{m}", "config_id": f"f-{m}", "seed": s, "test_wga": w,
         "test_acc": acc}
        for m, values in wga.items()
        for s, w in zip((seeds or {}).get(m, range(len(values))), values)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def board_of(runs: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's join keys, labels and mean WGA of ``runs``."""
    board = runs.groupby(["dataset", "method", "family_id"], sort=False)["test_wga"].mean().reset_index()
    return board.rename(columns={"test_wga": "wga_mean"}).assign(label=lambda b: b["method"])


def test_erm_failure_is_the_mean_gap_over_seeds_with_its_bootstrap_interval():
    runs = pd.DataFrame({"seed": [0, 1, 2], "test_acc": [80.0, 90.0, 85.0], "test_wga": [60.0, 70.0, 50.0]})
    erm = erm_failure(runs)  # gaps 20, 20, 35
    assert erm["erm_gap_mean"] == pytest.approx(25.0) and erm["erm_seeds"] == 3
    assert 20.0 <= erm["erm_gap_ci_low"] < 25.0 < erm["erm_gap_ci_high"] <= 35.0
    assert erm["erm_fails"] == "yes" and erm["erm_note"] == ""


@pytest.mark.parametrize(
    "gaps, fails, note",
    [
        ([1.0, 2.0, 3.0], "no", "gap under 5 points"),
        ([-10.0, 10.0, 20.0], "no", "interval includes 0"),  # mean 6.7, but a quarter of resamples are <= 0
        ([-1.0, 1.0, 3.0], "no", "interval includes 0; gap under 5 points"),
        ([30.0], "undecided", "one seed: no interval"),
        ([3.0], "no", "gap under 5 points"),
    ],
)
def test_erm_does_not_fail_when_the_gap_is_small_or_may_be_zero(gaps, fails, note):
    runs = pd.DataFrame({"seed": range(len(gaps)), "test_acc": 90.0, "test_wga": [90.0 - g for g in gaps]})
    erm = erm_failure(runs)
    assert erm["erm_gap_mean"] == pytest.approx(np.mean(gaps))
    assert (erm["erm_fails"], erm["erm_note"]) == (fails, note)


def test_without_erm_the_failure_is_na_with_the_reason():
    runs = runs_of({"groupdro": A, "jtt": B})
    summary, _ = dataset_validity("toy", runs, board_of(runs))
    assert summary["erm_fails"] == "n/a" and summary["erm_note"] == "no ERM row on the leaderboard"
    assert np.isnan(summary["erm_gap_mean"]) and summary["pairs"] == 1


def test_holm_steps_down_and_stops_at_the_first_kept_hypothesis():
    adjusted, rejected = holm([0.01, 0.04, 0.03, np.nan])  # nan counts as 1; m = 4
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 1.0])
    assert rejected.tolist() == [True, False, False, False]
    adjusted, rejected = holm([0.001, 0.02, 0.04])
    np.testing.assert_allclose(adjusted, [0.003, 0.04, 0.04])
    assert rejected.tolist() == [True, True, True]


def test_discriminative_power_counts_pairs_significant_after_holm():
    runs = runs_of({"erm": A, "groupdro": B, "jtt": C})
    board = board_of(runs)
    pairs = pair_tests(runs, board).set_index(["a", "b"])
    assert pairs.loc[("erm", "groupdro"), "p"] == pytest.approx(ttest_rel(A, B).pvalue)
    assert pairs.loc[("erm", "jtt"), "p"] == pytest.approx(ttest_rel(A, C).pvalue)
    assert pairs.loc[("erm", "jtt"), "p"] < 0.05 < pairs.loc[("erm", "jtt"), "p_holm"], "significant only uncorrected"
    assert (pairs["test"] == "paired").all() and pairs.loc[("erm", "groupdro"), "diff"] == pytest.approx(-40.4)
    power = power_summary(pair_tests(runs, board))
    assert (power["pairs"], power["pairs_significant"], power["pairs_untestable"]) == (3, 1, 0)
    assert power["significant_fraction"] == pytest.approx(1 / 3)


def test_rows_without_shared_seeds_use_welch_and_a_single_seed_is_untestable():
    runs = runs_of({"erm": A[:3], "groupdro": B[:3], "jtt": [60.0]}, seeds={"groupdro": [3, 4, 5]})
    pairs = pair_tests(runs, board_of(runs)).set_index(["a", "b"])
    welch = pairs.loc[("erm", "groupdro")]
    assert welch["test"] == "welch" and welch["seeds"] == "3 vs 3"
    assert welch["p"] == pytest.approx(ttest_ind(A[:3], B[:3], equal_var=False).pvalue)
    assert pairs.loc[("erm", "jtt"), "test"] == "none" and np.isnan(pairs.loc[("erm", "jtt"), "p"])
    assert pairs.loc[("erm", "jtt"), "p_holm"] == 1.0 and not pairs["significant"].iloc[1:].any()
    assert power_summary(pair_tests(runs, board_of(runs)))["pairs_untestable"] == 2


def test_convergent_validity_is_kendall_tau_over_shared_methods():
    def board(means: dict[str, float]) -> pd.DataFrame:
        return pd.DataFrame({"label": list(means), "wga_mean": list(means.values())})

    boards = {
        "one": board({"erm": 10.0, "groupdro": 20.0, "jtt": 30.0, "only-here": 99.0}),
        "same": board({"jtt": 35.0, "erm": 15.0, "groupdro": 25.0}),  # same ranking, other order and values
        "reversed": board({"erm": 30.0, "groupdro": 20.0, "jtt": 10.0}),
        "lonely": board({"erm": 50.0, "mr2": 60.0}),
    }
    taus = convergent_validity(boards).set_index(["dataset_a", "dataset_b"])
    assert taus.loc[("one", "same"), "tau"] == pytest.approx(1.0) and taus.loc[("one", "same"), "shared"] == 3
    assert taus.loc[("one", "reversed"), "tau"] == pytest.approx(-1.0)
    assert taus.loc[("same", "reversed"), "tau"] == pytest.approx(-1.0)
    assert taus.loc[("one", "lonely"), "shared"] == 1 and np.isnan(taus.loc[("one", "lonely"), "tau"])
    assert len(taus) == 6 and taus["tau"].isna().sum() == 3
    assert mean_tau(taus.reset_index()) == pytest.approx(-1 / 3)
    assert np.isnan(mean_tau(convergent_validity({"lonely": boards["lonely"], "one": boards["one"]})))


def two_datasets() -> list[dict]:
    """toy: erm (WGA 50, 60, 40; acc 70) below groupdro; other: erm above groupdro (WGA 30)."""
    results = [fake_result("erm", s, c) for s, c in enumerate(([9, 5], [8, 6], [10, 4]))]
    results += [fake_result("groupdro", s, c) for s, c in enumerate(([8, 7], [7, 8]))]
    results += [fake_result("erm", s, c, dataset="other") for s, c in enumerate(([9, 5], [8, 6], [10, 4]))]
    return results + [fake_result("groupdro", s, [3, 3], dataset="other") for s in range(2)]


def test_reports_write_validity_per_dataset_and_over_datasets(tmp_path):
    write_reports(two_datasets(), tmp_path, ("csv", "md"))
    for dataset in ("toy", "other"):
        row = pd.read_csv(tmp_path / dataset / "validity.csv").iloc[0]
        assert row["dataset"] == dataset and row["erm_label"] == "erm" and row["erm_seeds"] == 3
        assert row["erm_gap_mean"] == pytest.approx(20.0) and row["erm_fails"] == "yes"  # acc 70 - WGA 50, 60, 40
        assert row["pairs"] == 1
        md = (tmp_path / dataset / "validity.md").read_text()
        assert "ERM failure: erm's test accuracy minus worst-group accuracy is 20.0 points" in md
        assert "| erm | groupdro | paired | 2 shared |" in md
    combined = pd.read_csv(tmp_path / "validity.csv").set_index("dataset")
    assert list(combined.index) == ["toy", "other"]
    assert combined.loc["toy", "tau_vs_other"] == pytest.approx(-1.0) and np.isnan(combined.loc["toy", "tau_vs_toy"])
    assert combined.loc["other", "mean_tau_vs_others"] == pytest.approx(-1.0)
    md = (tmp_path / "validity.md").read_text()
    assert "| toy | other | 2 | -1.000 |" in md and "Mean Kendall τ over pairs of datasets: -1.000." in md
    assert "| toy | 20.0 | [10.0, 30.0] | 3 | yes | 2 | 1 | 0 | 0% |" in md


def test_formats_decide_the_validity_files_and_one_dataset_has_no_combined_ones(tmp_path):
    write_reports(two_datasets(), tmp_path / "md", ("md",))
    assert (tmp_path / "md" / "toy" / "validity.md").is_file() and (tmp_path / "md" / "validity.md").is_file()
    assert not list((tmp_path / "md").rglob("validity.csv"))
    write_reports([r for r in two_datasets() if r["dataset"] == "toy"], tmp_path / "one", ("csv", "md"))
    assert (tmp_path / "one" / "toy" / "validity.csv").is_file() and not list((tmp_path / "one").glob("validity.*"))
    write_reports(two_datasets(), tmp_path / "tex", ("tex",))
    assert not list((tmp_path / "tex").rglob("validity.*"))


def test_html_has_a_validity_section(tmp_path):
    results = [fake_result("groupdro", s, c) for s, c in enumerate(([8, 7], [7, 8]))]
    write_reports(results, tmp_path, ("html",))
    html = (tmp_path / "toy" / "report.html").read_text()
    section = html.split("<h2>Validity</h2>", 1)[1].split("<h2>", 1)[0]
    assert "ERM failure: n/a (no ERM row on the leaderboard)." in section
    assert "Discriminative power: n/a (fewer than two rows on the leaderboard)." in section
    assert html.count("<table>") == 4, "the section adds no table"


def test_the_paired_spread_pools_every_pairs_differences_over_shared_seeds():
    runs = runs_of({"a": A, "b": B, "c": C[:3]}, seeds={"c": [0, 1, 7]})
    sd, seeds = paired_spread(runs, board_of(runs))
    pairs = [np.subtract(A, B), np.subtract(A[:2], C[:2]), np.subtract(B[:2], C[:2])]  # c shares seeds 0 and 1
    dof = [len(d) - 1 for d in pairs]
    expected = np.sqrt(sum(np.var(d, ddof=1) * k for d, k in zip(pairs, dof)) / sum(dof))
    assert sd == pytest.approx(expected) and seeds == 5


def test_validity_reports_the_minimum_detectable_difference_at_the_seeds_used_and_at_3_and_10():
    runs = runs_of({"erm": A, "b": B, "c": C})
    summary, pairs = dataset_validity("toy", runs, board_of(runs))
    sd, level = paired_spread(runs, board_of(runs))[0], 0.05 / len(pairs)
    assert summary["pair_sd"] == pytest.approx(sd) and summary["seeds"] == 5
    assert summary["mdd"] == pytest.approx(detectable_difference(sd, 5, level))
    assert summary["mdd_3"] > summary["mdd"] > summary["mdd_10"] == pytest.approx(detectable_difference(sd, 10, level))
