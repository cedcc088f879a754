"""MR²'s class-wise disparity metrics Easy / Medium / Hard (the MR² paper, Table 1), here ``easy``, ``middle``
and ``hard`` (``medium`` is already digits-lt's Many/Medium/Few summary).

The classes of a dataset are sorted by ERM's per-class test accuracy and split into thirds; each method's
Easy / Middle / Hard is its accuracy on each third. Decisions:

- the split is defined by the dataset's ERM leaderboard row: ERM's chosen trial, each class's test accuracy
  averaged over its seeds; where the dataset has several ERM rows (sweep families), the one with the most seeds,
  then the first (the leaderboard's order);
- thirds are :func:`numpy.array_split` of the classes sorted by that accuracy, highest first (10 classes: 4 easy,
  3 middle, 3 hard); ties keep the dataset's class order;
- a third's accuracy is the mean of the per-class test accuracies of its classes (the paper's test sets are
  class-balanced, where this and the pooled accuracy of the third's samples agree); a class absent from a run's
  test split is left out of that run's mean, as absent groups are left out of the group metrics;
- only for datasets with at least 3 classes whose runs record per-class accuracy (``class:<name>`` columns of
  the runs frame, ERM's among them) and only when ERM is among the runs; otherwise no such columns.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from benchmark.core.selection import FAMILY_KEYS as KEYS

DIFFICULTY = ("easy", "middle", "hard")
CLASS = "class:"  # the runs frame's per-class test accuracy columns


def difficulty_thirds(class_accuracy: dict[str, float]) -> dict[str, list[str]]:
    """``easy``, ``middle`` and ``hard`` -> the names of the classes in each third of ``class_accuracy`` (class ->
    accuracy, in class order) sorted by accuracy, highest first, ties in class order; thirds by
    :func:`numpy.array_split` (the first thirds get the extra classes). Needs at least 3 classes."""
    if len(class_accuracy) < 3:
        raise ValueError(f"thirds need at least 3 classes, got {len(class_accuracy)}")
    ranked = sorted(class_accuracy, key=lambda name: class_accuracy[name], reverse=True)  # stable: ties keep order
    parts = np.array_split(np.arange(len(ranked)), len(DIFFICULTY))
    return {name: [ranked[i] for i in part] for name, part in zip(DIFFICULTY, parts)}


def difficulty_split(runs: pd.DataFrame, baseline: str = "erm") -> dict | None:
    """The Easy / Middle / Hard split of one dataset's runs (those of the chosen trials): ``thirds``
    (:func:`difficulty_thirds` of the per-class test accuracy of ``baseline``'s row averaged over its seeds),
    ``baseline``, and that row's ``family_id``, ``seeds`` and ``trial``. The row: ``baseline``'s family with the
    most seeds, then the first. None without ``baseline`` runs or with fewer than 3 classes that it records."""
    columns = [c for c in runs.columns if c.startswith(CLASS)]
    reference = runs[runs["method"] == baseline]
    if len(columns) < 3 or reference.empty:
        return None
    families = reference.groupby(KEYS, sort=False)
    seeds = families["seed"].nunique()
    chosen = families.get_group(seeds.idxmax())  # idxmax: the first family with the most seeds
    accuracy = chosen[columns].mean().dropna()  # over seeds; classes it never records are left out
    if len(accuracy) < 3:
        return None
    thirds = difficulty_thirds({c[len(CLASS) :]: float(a) for c, a in accuracy.items()})
    trial = chosen["trial"].iloc[0]
    return {
        "thirds": thirds,
        "baseline": baseline,
        "family_id": str(chosen["family_id"].iloc[0]),
        "seeds": int(seeds.max()),
        "trial": int(trial) if pd.notna(trial) else None,
    }


def with_difficulty(runs: pd.DataFrame, thirds: dict[str, list[str]]) -> pd.DataFrame:
    """``runs`` with ``test_easy``, ``test_middle`` and ``test_hard``: each run's mean over the ``class:`` columns
    of the third's classes (classes absent from its test split left out; NaN where it records none of them)."""
    means = {f"test_{name}": runs[[f"{CLASS}{c}" for c in classes]].mean(axis=1) for name, classes in thirds.items()}
    return runs.assign(**means)


def add_difficulty(runs: pd.DataFrame, baseline: str = "erm") -> tuple[pd.DataFrame, dict | None]:
    """One dataset's runs with the Easy / Middle / Hard columns (:func:`with_difficulty`) where it has a split
    (:func:`difficulty_split`), and the split (None, the runs unchanged, where it has none)."""
    split = difficulty_split(runs, baseline)
    return (runs, None) if split is None else (with_difficulty(runs, split["thirds"]), split)


def difficulty_note(split: dict, escape: Callable[[str], str] = str) -> str:
    """The line under a leaderboard that says how its Easy / Middle / Hard columns were made: the baseline row
    that defined the split (``label``: ERM's own where it is the method name), its seeds and trial, and each
    third's classes (row label and class names through ``escape``)."""
    who = "ERM" if split.get("label", split["baseline"]) == split["baseline"] else escape(split["label"])
    seeds = f"{split['seeds']} seed" + ("s" if split["seeds"] != 1 else "")
    trial = "" if split.get("trial") is None else f", trial {split['trial']}"
    thirds = "; ".join(f"{name} = {', '.join(map(escape, split['thirds'][name]))}" for name in DIFFICULTY)
    return (
        f"Easy/Middle/Hard: classes split into thirds by {who}'s per-class test accuracy (mean over its "
        f"{seeds}{trial}), highest first: {thirds}; each column is a method's mean test accuracy over a third's "
        "classes."
    )
