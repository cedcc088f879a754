"""MR²'s class-wise Easy / Middle / Hard: classes split into thirds by ERM's per-class test accuracy, each
method's mean accuracy over a third's classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_report import fake_result

from benchmark.core.metrics import class_metrics
from benchmark.report.difficulty import (
    add_difficulty,
    difficulty_note,
    difficulty_split,
    difficulty_thirds,
    with_difficulty,
)
from benchmark.report.files import write_reports
from benchmark.report.frames import dataset_boards, shown_metrics


def test_thirds_sort_by_accuracy_highest_first_ties_in_class_order():
    accuracy = {"a": 50.0, "b": 90.0, "c": 70.0, "d": 90.0, "e": 10.0, "f": 70.0}
    assert difficulty_thirds(accuracy) == {"easy": ["b", "d"], "middle": ["c", "f"], "hard": ["a", "e"]}


def test_ten_classes_split_four_three_three():
    accuracy = {str(c): acc for c, acc in enumerate([60, 95, 20, 40, 80, 10, 30, 90, 50, 70])}
    thirds = difficulty_thirds(accuracy)
    assert thirds == {"easy": ["1", "7", "4", "9"], "middle": ["0", "8", "3"], "hard": ["6", "2", "5"]}
    assert [len(classes) for classes in thirds.values()] == [4, 3, 3]


def test_thirds_of_three_classes_and_fewer():
    assert difficulty_thirds({"x": 1.0, "y": 3.0, "z": 2.0}) == {"easy": ["y"], "middle": ["z"], "hard": ["x"]}
    with pytest.raises(ValueError, match="at least 3 classes"):
        difficulty_thirds({"x": 1.0, "y": 2.0})


def runs(method_classes: list[tuple[str, int, list[float]]]) -> pd.DataFrame:
    """A hand-made runs frame of one dataset: method, seed, one accuracy per class c0, c1, ..."""
    rows = [
        {"dataset": "toy", "method": m, "family_id": f"cfg-{m}", "trial": 0, "seed": s}
        | {f"class:c{i}": a for i, a in enumerate(accs)}
        for m, s, accs in method_classes
    ]
    return pd.DataFrame(rows)


def test_per_run_columns_are_means_over_each_thirds_classes():
    frame = runs([("erm", 0, [90, 80, 70, 60, 50, 40]), ("jtt", 0, [10, 20, 30, 40, 50, 60])])
    thirds = {"easy": ["c0", "c1"], "middle": ["c2", "c3"], "hard": ["c4", "c5"]}
    out = with_difficulty(frame, thirds)
    assert list(out["test_easy"]) == [85.0, 15.0]
    assert list(out["test_middle"]) == [65.0, 35.0]
    assert list(out["test_hard"]) == [45.0, 55.0]
    absent = frame.assign(**{"class:c4": [np.nan, np.nan]})  # a class missing from a run's test split
    assert list(with_difficulty(absent, thirds)["test_hard"]) == [40.0, 60.0]


def test_split_uses_erm_averaged_over_seeds_and_the_erm_row_with_most_seeds():
    frame = runs(
        [
            ("jtt", 0, [0, 0, 100]),
            ("erm", 0, [90, 10, 50]),
            ("erm", 1, [70, 30, 50]),  # erm means: c0 80, c1 20, c2 50
        ]
    )
    split = difficulty_split(frame)
    assert split["thirds"] == {"easy": ["c0"], "middle": ["c2"], "hard": ["c1"]}
    assert (split["seeds"], split["trial"], split["family_id"]) == (2, 0, "cfg-erm")
    other = runs([("erm", 0, [10, 20, 30])]).assign(family_id="cfg-erm-2")  # a second ERM row, one seed
    split = difficulty_split(pd.concat([other, frame], ignore_index=True))
    assert split["family_id"] == "cfg-erm" and split["thirds"]["easy"] == ["c0"]
    tied = pd.concat([other, other.assign(seed=1), frame], ignore_index=True)  # as many seeds: the first row
    assert difficulty_split(tied)["family_id"] == "cfg-erm-2"


def test_two_classes_or_no_erm_give_no_columns():
    two = runs([("erm", 0, [90, 10]), ("jtt", 0, [50, 50])])
    no_erm = runs([("jtt", 0, [90, 10, 50]), ("groupdro", 0, [50, 50, 50])])
    old = runs([("erm", 0, []), ("jtt", 0, [])])  # runs that record no per-class accuracy
    for frame in (two, no_erm, old):
        out, split = add_difficulty(frame)
        assert split is None and not any(c in out for c in ("test_easy", "test_middle", "test_hard"))
        assert out is frame


def classwise_result(method: str, seed: int, class_correct: list[int], dataset: str = "toy") -> dict:
    """A fake stored run whose evaluations also record per-class accuracy (10 test samples per class)."""
    result = fake_result(method, seed, [9, 5], dataset=dataset)
    names = [f"k{i}" for i in range(len(class_correct))]
    metrics = {**result["test"], **class_metrics(class_correct, [10] * len(class_correct), names)}
    result["history"] = [{"epoch": 1, "val": metrics, "test": metrics}]
    result["test"] = result["val"] = metrics
    return result


@pytest.fixture
def classwise_results():
    # erm's mean per class over its seeds: k0 85, k1 15, k2 55, k3 70, k4 30 -> easy k0, k3; middle k2, k4; hard k1
    return [
        classwise_result("erm", 0, [9, 1, 5, 7, 3]),
        classwise_result("erm", 1, [8, 2, 6, 7, 3]),
        classwise_result("jtt", 0, [5, 5, 5, 5, 5]),
        classwise_result("jtt", 1, [7, 9, 3, 5, 1]),
    ]


def test_dataset_boards_get_easy_middle_hard_from_erms_thirds(classwise_results):
    runs_, board = dataset_boards(classwise_results)["toy"]
    split = board.attrs["difficulty"]
    assert split["thirds"] == {"easy": ["k0", "k3"], "middle": ["k2", "k4"], "hard": ["k1"]}
    assert (split["label"], split["seeds"], split["trial"]) == ("erm", 2, 0)
    rows = board.set_index("method")
    assert rows.loc["erm", "easy_mean"] == pytest.approx(77.5)  # (90 + 70) / 2, (80 + 70) / 2
    assert rows.loc["erm", "middle_mean"] == pytest.approx(42.5)  # (50 + 30) / 2, (60 + 30) / 2
    assert rows.loc["erm", "hard_mean"] == pytest.approx(15.0)
    assert rows.loc["jtt", "easy_mean"] == pytest.approx(55.0)  # seed 0: all 50; seed 1: (70 + 50) / 2
    assert rows.loc["jtt", "easy_std"] == pytest.approx(np.std([50, 60], ddof=1))
    assert rows.loc["jtt", "middle_mean"] == pytest.approx(35.0)  # 50, (30 + 10) / 2
    assert rows.loc["jtt", "hard_mean"] == pytest.approx(70.0)  # 50, 90
    assert rows.loc["jtt", "wca_mean"] == pytest.approx(30.0)  # 50, 10
    assert list(runs_["test_easy"]) == [80.0, 75.0, 50.0, 60.0]
    assert shown_metrics(board)[-4:] == ["wca", "easy", "middle", "hard"]
    _, picked = dataset_boards(classwise_results, columns=["wga", "hard"])["toy"]  # --columns may name them
    assert shown_metrics(picked, ["wga", "hard"]) == ["wga", "hard"]


def test_class_wise_columns_come_after_the_datasets_own_extras(classwise_results):
    for result in classwise_results:
        result["history"][0]["test"] = {"many": 1.0, **result["history"][0]["test"], "few": 2.0}
    _, board = dataset_boards(classwise_results)["toy"]
    # Many/Few make it a long-tailed board: balanced (mean-group) accuracy leads, the buckets follow it
    shown = shown_metrics(board)
    assert shown[:3] == ["mean_group_acc", "many", "few"] and shown[-4:] == ["wca", "easy", "middle", "hard"]


def test_other_datasets_classes_are_dropped_and_old_runs_get_no_split(classwise_results):
    old = [fake_result("erm", 0, [9, 5], dataset="old"), fake_result("jtt", 0, [5, 9], dataset="old")]
    boards = dataset_boards([*classwise_results, *old])
    old_runs, old_board = boards["old"]
    assert not [c for c in old_runs if c.startswith("class:") or c.endswith(("_wca", "_easy", "_middle", "_hard"))]
    assert "difficulty" not in old_board.attrs and "easy_mean" not in old_board
    assert [c for c in boards["toy"][0] if c.startswith("class:")] == [f"class:k{i}" for i in range(5)]


def test_reports_say_which_erm_row_split_the_classes(tmp_path, classwise_results):
    write_reports(classwise_results, tmp_path)
    md = (tmp_path / "toy" / "leaderboard.md").read_text()
    header = md.splitlines()[0]
    assert header.index("WCA ↑") < header.index("Easy ↑") < header.index("Middle ↑") < header.index("Hard ↑")
    note = (
        "Easy/Middle/Hard: classes split into thirds by ERM's per-class test accuracy (mean over its 2 seeds, "
        "trial 0), highest first: easy = k0, k3; middle = k2, k4; hard = k1"
    )
    assert note in md.split("per group")[0]
    tex = (tmp_path / "toy" / "leaderboard.tex").read_text()
    assert f"% {note}" in tex and r"Easy $\uparrow$" in tex
    assert "Easy/Middle/Hard" not in (tmp_path / "toy" / "groups.tex").read_text()


def test_note_names_the_erm_row_when_erm_has_several():
    split = {"thirds": {"easy": ["a|b"], "middle": ["c"], "hard": ["d"]}, "baseline": "erm", "seeds": 1}
    note = difficulty_note({**split, "label": "erm (train.lr=0.1)", "trial": 3}, lambda t: t.replace("|", r"\|"))
    assert "by erm (train.lr=0.1)'s per-class test accuracy (mean over its 1 seed, trial 3)" in note
    assert r"easy = a\|b; middle = c; hard = d" in note
