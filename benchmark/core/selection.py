"""Model selection: which epoch of a run, and which hparam trial of a method, a leaderboard reports.

A run stores every evaluation of its final stage (``history``), so any rule can be applied after training:
``bench report --select`` re-selects from stored runs without training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.core.errors import BenchError

if TYPE_CHECKING:  # annotations only
    import pandas as pd

SELECT_RULES = ("val-wga", "val-wca", "val-acc", "oracle")
# rule -> (split, metric, tie-break metric): e.g. epochs tied at the same val wga go to the better val acc.
# val-wca (worst-class validation accuracy) is SubpopBench's rule when validation group labels are missing.
SELECT_METRIC = {
    "val-wga": ("val", "wga", "acc"),
    "val-wca": ("val", "wca", "acc"),
    "val-acc": ("val", "acc", "wga"),
    "oracle": ("test", "wga", "acc"),
}
# the trials of one method in one sweep share these (family_id: the config id of the sweep's trial 0)
FAMILY_KEYS = ["dataset", "method", "family_id"]


def selection_score(record: dict, rule: str) -> tuple[float, float]:
    """(metric, tie-break) of an evaluation record under ``rule``; a missing value scores -inf."""
    split, metric, tie_break = SELECT_METRIC[rule]
    return tuple(float("-inf") if record[split][m] is None else record[split][m] for m in (metric, tie_break))


def select_epoch(history: list[dict], rule: str) -> dict:
    """The first evaluation record with the best score under ``rule``; a BenchError when the records lack the
    rule's metric (runs stored before per-class metrics have no ``wca``)."""
    split, metric, _ = SELECT_METRIC[rule]
    if metric not in history[0][split]:
        raise BenchError(f"--select {rule}: these runs do not record {split} {metric} (stored before it was); retrain")
    best = history[0]
    for record in history[1:]:
        if selection_score(record, rule) > selection_score(best, rule):
            best = record
    return best


def selected(result: dict, rule: str) -> dict:
    """A trained run's result led by the evaluation ``rule`` picks from its ``history``: ``selected_epoch``,
    ``select``, and that evaluation's ``val``, ``test`` and ``live_units``."""
    best = select_epoch(result["history"], rule)
    picked = {"selected_epoch": best["epoch"], "select": rule, **{k: best[k] for k in ("val", "test", "live_units")}}
    return {**picked, **result}


def select_trials(runs: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Keep, per (dataset, method, family), the runs of the configuration (hparam trial) whose mean selection
    score over the compared seeds is best (ties: the mean tie-break score, then the lower trial number).

    The compared seeds are those every configuration of the family has a run on: all seeds when every trial ran
    on every seed, the tuning seeds after two-phase tuning (``--tune-seeds``: all trials on the tuning seeds,
    then only the winner on every seed), so that no trial wins by having been run on other seeds.

    ``runs`` has one row per run with ``family_id``, ``config_id``, ``trial``, ``seed`` and ``sel_score``/
    ``sel_tie`` (the run's scores at its selected epoch). Adds ``trials`` (how many configurations were compared)
    and ``tuned_on`` (the compared seeds, e.g. ``0`` or ``0,1,2``).
    """
    keys = FAMILY_KEYS
    seeds_of = runs.groupby([*keys, "config_id"], sort=False)["seed"].agg(frozenset).rename("seeds").reset_index()
    shared = seeds_of.groupby(keys, sort=False)["seeds"].agg(lambda s: frozenset.intersection(*s)).rename("shared")
    compared = runs.merge(shared.reset_index(), on=keys, how="left")
    compared = compared[[seed in both for seed, both in zip(compared["seed"], compared["shared"])]]
    per_config = compared.groupby([*keys, "config_id"], sort=False).agg(
        score=("sel_score", "mean"), tie=("sel_tie", "mean"), trial=("trial", "min")
    )
    per_config = per_config.reset_index().sort_values(["score", "tie", "trial"], ascending=[False, False, True])
    chosen = per_config.drop_duplicates(keys)
    trials = per_config.groupby(keys, sort=False)["config_id"].nunique().rename("trials").reset_index()
    tuned_on = shared.map(lambda seeds: ",".join(str(seed) for seed in sorted(seeds))).rename("tuned_on")
    kept = runs[runs["config_id"].isin(chosen["config_id"])]
    return kept.merge(trials, on=keys, how="left").merge(tuned_on.reset_index(), on=keys, how="left")


def tuned_seeds(tuned_on) -> set[int]:
    """The seeds in a ``tuned_on`` value of :func:`select_trials` (``0`` or ``0,1,2``)."""
    return {int(seed) for seed in str(tuned_on).split(",")}
