"""Report statistics: the paired t-test against ERM over shared seeds, the difference it can detect, and percentile
bootstrap intervals."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from scipy.stats import ttest_rel
from test_report import fake_result, table_rows

from benchmark.report.files import write_reports
from benchmark.report.stats import bootstrap_ci, detectable_difference, paired_ttest, wilson_interval


def test_paired_ttest_uses_the_shared_seeds_only():
    test = paired_ttest(pd.Series([70.0, 70.0, 99.0], index=[0, 1, 5]), pd.Series([50.0, 60.0, 40.0], index=[0, 1, 2]))
    assert test.n == 2 and test.diff == pytest.approx(15.0)
    # differences 20 and 10: t = 15 / (7.071 / sqrt 2) = 3 with 1 degree of freedom (Cauchy): p = 1 - 2 atan(3) / pi
    assert test.pvalue == pytest.approx(1 - 2 * math.atan(3) / math.pi, rel=1e-12)


def test_paired_ttest_matches_a_float64_scipy_reference():
    rng = np.random.default_rng(3)
    a, b = rng.normal(80, 3, 5).astype(np.float32), rng.normal(78, 3, 5).astype(np.float32)
    reference = ttest_rel(a.astype(np.float64), b.astype(np.float64))
    test = paired_ttest(pd.Series(a), pd.Series(b))
    assert test.pvalue == pytest.approx(float(reference.pvalue), rel=1e-12, abs=0)
    assert test.diff == pytest.approx(float(np.mean(a.astype(np.float64) - b.astype(np.float64))), rel=1e-12)


def test_paired_ttest_needs_two_shared_seeds():
    assert paired_ttest(pd.Series([1.0, 2.0], index=[0, 1]), pd.Series([1.0, 2.0], index=[1, 2])) is None
    assert paired_ttest(pd.Series([1.0, np.nan]), pd.Series([3.0, 4.0])) is None  # a missing value is no seed


def test_bootstrap_ci_contains_the_mean_and_is_deterministic():
    values = [50.0, 60.0, 40.0, 75.0, 52.0]
    low, high = bootstrap_ci(values)
    assert min(values) <= low < np.mean(values) < high <= max(values)
    assert bootstrap_ci(values) == (low, high)
    wide = bootstrap_ci(values, level=0.99)
    assert wide[0] <= low and high <= wide[1]
    assert all(math.isnan(v) for v in bootstrap_ci([70.0, np.nan]))  # one value: no interval


# test wga (10 x the lower number correct) per seed 0, 1, 2
WGA = {
    "erm": ([9, 5], [8, 6], [10, 4]),  # 50, 60, 40
    "groupdro": ([7, 9], [8, 9], [7, 8]),  # 70, 80, 70: better on every seed
    "jtt": ([6, 9], [5, 9], [7, 9]),  # 60, 50, 70: better on average, not consistently
    "bad": ([3, 9], [4, 9], [2, 9]),  # 30, 40, 20: consistently worse
}


def test_clear_wins_over_erm_get_a_dagger(tmp_path):
    results = [fake_result(m, seed, correct) for m, runs in WGA.items() for seed, correct in enumerate(runs)]
    board = write_reports(results, tmp_path)["toy"].set_index("method")
    p = board["wga_p_vs_erm"]
    assert math.isnan(p["erm"]) and not board.loc["erm", "wga_win_vs_erm"]
    assert p["groupdro"] == pytest.approx(ttest_rel([70.0, 80, 70], [50.0, 60, 40]).pvalue) and p["groupdro"] < 0.05
    assert p["jtt"] > 0.05 and p["bad"] < 0.05
    assert board["wga_win_vs_erm"].to_dict() == {"erm": False, "groupdro": True, "jtt": False, "bad": False}
    csv = pd.read_csv(tmp_path / "toy" / "leaderboard.csv").set_index("method")
    assert csv.loc["groupdro", "wga_p_vs_erm"] == pytest.approx(p["groupdro"], rel=1e-3)
    assert csv.loc["jtt", "wga_ci_low"] <= csv.loc["jtt", "wga_mean"] <= csv.loc["jtt", "wga_ci_high"]

    md = (tmp_path / "toy" / "leaderboard.md").read_text().split("per group")[0]
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ") and "---" not in line}
    assert "**73.3 ± 5.8**†" in rows["groupdro"]
    assert "†" not in rows["jtt"] + rows["bad"] + rows["erm"]
    assert any(line.startswith("† ") and "paired t-test" in line for line in md.splitlines())
    tex = (tmp_path / "toy" / "leaderboard.tex").read_text()
    assert r"groupdro & $\mathbf{73.3 \pm 5.8}$\textsuperscript{$\dagger$} &" in tex
    assert tex.count(r"\dagger") == 2 and r"\multicolumn{8}{l}{\footnotesize \textsuperscript{$\dagger$}" in tex


def test_without_an_erm_row_nothing_is_tested(tmp_path):
    results = [fake_result(m, seed, WGA[m][seed]) for m in ("groupdro", "bad") for seed in range(3)]
    board = write_reports(results, tmp_path)["toy"]
    assert board["wga_p_vs_erm"].isna().all() and not board["wga_win_vs_erm"].any()
    assert "†" not in (tmp_path / "toy" / "leaderboard.md").read_text()
    assert r"\dagger" not in (tmp_path / "toy" / "leaderboard.tex").read_text()


def test_wilson_interval_bounds_solve_the_score_equation():
    # the Wilson bounds are the two roots p of (p̂ − p)² = z² p (1 − p) / n: an independent check in float64
    z = 1.959963984540054
    for percent, n in ((80.0, 200), (50.0, 70), (100.0, 30), (0.0, 1000), (97.5, 2000)):
        low, high = wilson_interval(percent, n)
        assert 0.0 <= low <= percent <= high <= 100.0
        for bound in (low / 100, high / 100):
            assert (percent / 100 - bound) ** 2 == pytest.approx(z * z * bound * (1 - bound) / n, abs=1e-12)
    low, high = wilson_interval(80.0, 200)
    assert high - low == pytest.approx(11.04, abs=0.01)  # about ±5.5 points around 80% on 200 samples
    assert all(math.isnan(bound) for bound in wilson_interval(50.0, 0))  # no samples: no interval


def test_group_table_shows_test_sizes_wilson_intervals_live_units_and_stage_steps(tmp_path):
    results = []
    for seed in (0, 1):
        r = fake_result("jtt", seed, [8, 5])
        r["history"][0]["live_units"] = {"g0": 1.0, "g1": 0.25 * (seed + 1)}
        r["group_sizes"] = {"train": {"g0": 30, "g1": 5}, "val": {"g0": 10, "g1": 10}, "test": {"g0": 10, "g1": 10}}
        r["steps"], r["stages"] = 40, [{"name": "identify", "steps": 10}, {"name": "upweighted", "steps": 30}]
        results.append(r)
    write_reports(results, tmp_path, formats=("csv", "md", "tex"))
    md = (tmp_path / "toy" / "leaderboard.md").read_text()
    groups = table_rows(md, 1)
    assert groups["header"] == ["Method", "g0 (n = 10)", "g1 (n = 10)", "g0 live %", "g1 live %"]
    low, high = wilson_interval(50.0, 10)
    assert groups["jtt"] == ["80.0 [49.0, 94.3]", f"50.0 [{low:.1f}, {high:.1f}]", "100", "38"]
    cost = table_rows(md, 2)
    assert cost["header"][1:3] == ["Steps", "Steps per stage"]
    assert cost["jtt"][:2] == ["40", "identify 10 + upweighted 30"]
    csv = pd.read_csv(tmp_path / "toy" / "groups.csv")
    assert csv.loc[0, "live:g1"] == pytest.approx(0.375) and csv.loc[0, "wilson_low:g1"] == pytest.approx(low)


def test_runs_without_group_sizes_get_no_interval_and_do_not_break_the_table(tmp_path):
    old, new = fake_result("erm", 0, [8, 5]), fake_result("groupdro", 0, [8, 5])
    new["group_sizes"] = {"test": {"g0": 10, "g1": 10}}
    write_reports([old, new], tmp_path, formats=("md",))
    groups = table_rows((tmp_path / "toy" / "leaderboard.md").read_text(), 1)
    assert groups["header"][1:] == ["g0 (n = 10)", "g1 (n = 10)"]
    assert groups["erm"] == ["80.0", "50.0"] and groups["groupdro"][0] == "80.0 [49.0, 94.3]"


@pytest.mark.parametrize("seeds, alpha", [(5, 0.05), (10, 0.05 / 28)])
def test_the_detectable_difference_has_the_power_it_claims(seeds, alpha):
    """At the computed difference, simulated paired t-tests (20,000 of them) reject about 80% of the time."""
    delta = detectable_difference(2.0, seeds, alpha)
    d = np.random.default_rng(0).normal(delta, 2.0, size=(20_000, seeds))
    t = d.mean(1) / (d.std(1, ddof=1) / np.sqrt(seeds))
    rejected = np.abs(t) > scipy.stats.t.ppf(1 - alpha / 2, seeds - 1)
    assert rejected.mean() == pytest.approx(0.8, abs=0.012)
    assert detectable_difference(2.0, seeds + 1, alpha) < delta < detectable_difference(2.0, seeds, alpha / 2)
    assert detectable_difference(0.0, seeds, alpha) == 0.0 and np.isnan(detectable_difference(2.0, 1, alpha))
