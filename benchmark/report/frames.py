"""Aggregation of result.json files into the report's frames: one row per run at its selected epoch, then per
(dataset, method, sweep family) of the selected trial a leaderboard (mean, std and bootstrap CI over seeds, a
paired test against ERM), per-group accuracies, compute cost, training curves, and worst-group accuracy over
datasets."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd

from benchmark.core.errors import BenchError
from benchmark.core.selection import FAMILY_KEYS as KEYS
from benchmark.core.selection import select_epoch, select_trials, selection_score
from benchmark.report.applicability import HIDDEN, NOT_APPLICABLE, not_applicable_families
from benchmark.report.difficulty import DIFFICULTY, add_difficulty
from benchmark.report.stats import bootstrap_ci, paired_ttest, wilson_interval

ORDER = ("wga", "acc", "delta_acc", "bga", "mean_group_acc")
CLASSWISE = ("wca", *DIFFICULTY)  # class-wise metrics: shown after the dataset's own extra summaries
COST = ("train_time_s", "steps_per_s", "peak_memory_mb")
# recorded by newer runs only: the cost table shows them when some run has them
RECORDED_COST = ("train_cpu_s", "parallel_runs")
PER_NAME = ("groups", "classes")  # a split's per-group and per-class accuracies (dicts), beside its metrics
PER_GROUP_DERIVED = ("live:", "n_test:", "wilson_low:", "wilson_high:")  # per-group columns beside the accuracies
BASELINE, ALPHA = "erm", 0.05  # daggers: p < ALPHA against BASELINE on the dataset's headline metric, better mean
LONG_TAIL = ("many", "medium", "few")  # the shot buckets a long-tailed dataset reports (its groups are its classes)


def headline(columns) -> str:
    """The metric a dataset's leaderboard leads with and tests against ERM, from the columns of its runs or board:
    balanced (mean-class) accuracy, ``mean_group_acc``, where the runs report :data:`LONG_TAIL` buckets (a
    long-tailed dataset, whose groups are its classes, so its worst group is its rarest class), worst-group
    accuracy ``wga`` everywhere else."""
    names = {c.removeprefix("test_").removesuffix("_mean") for c in columns}
    return "mean_group_acc" if LONG_TAIL[0] in names else "wga"


HEADLINE_NAMES = {"wga": "WGA", "mean_group_acc": "balanced accuracy"}
"""How report text names each :func:`headline` metric."""


def stage_steps(result: dict) -> str:
    """The optimizer steps of each stage of a run, e.g. ``identify 594 + upweighted 1782``."""
    return " + ".join(f"{stage['name']} {stage.get('steps', '?')}" for stage in result.get("stages", []))


def runs_frame(results: list[dict], select: str = "val-wga") -> pd.DataFrame:
    """One row per successful run at the epoch ``select`` picks from its history: identity, hparams (JSON),
    selection scores, test and val metrics (``test_*``, ``val_*``), test group and class accuracies (``group:*``,
    ``class:*``, runs that record them), the
    share of live latent units per group on val (``live:*``, runs that record it), test group sizes
    (``n_test:*``), total and per-stage steps, cost, and ``unrepeatable``: a CUDA run without deterministic
    algorithms (``deterministic`` false in its result), which a rerun may not repeat bitwise. A run whose method
    was not applicable (``not_applicable`` in its result: why its premise failed) keeps that reason in a
    ``not_applicable`` column and has no test number (NaN), so that no table shows one."""
    rows = []
    for r in results:
        if r.get("status") != "ok":
            continue
        best = select_epoch(r["history"], select)
        row = {k: r[k] for k in ("dataset", "method", "family_id", "config_id", "run_id", "trial", "seed", *COST)}
        row["hparams"] = json.dumps(r["hparams"], sort_keys=True)
        row["train"] = json.dumps(r.get("train", {}), sort_keys=True)
        row["select"], row["selected_epoch"] = select, best["epoch"]
        row["sel_score"], row["sel_tie"] = selection_score(best, select)
        row.update({f"test_{m}": v for m, v in best["test"].items() if m not in PER_NAME})
        row.update({f"val_{m}": v for m, v in best["val"].items() if m not in PER_NAME})
        row.update({f"group:{g}": acc for g, acc in best["test"]["groups"].items()})
        row.update({f"class:{c}": acc for c, acc in best["test"].get("classes", {}).items()})
        row.update({f"live:{g}": share for g, share in (best.get("live_units") or {}).items()})
        row.update({f"n_test:{g}": n for g, n in r.get("group_sizes", {}).get("test", {}).items()})
        row["steps"], row["stage_steps"] = r.get("steps"), stage_steps(r)
        row["unrepeatable"] = str(r.get("device", "cpu")).startswith("cuda") and not r.get("deterministic", False)
        row.update({k: r.get(k) for k in RECORDED_COST})
        row.update({"labels": r["labels"]} if "labels" in r else {})  # what the method read in training
        if r.get(NOT_APPLICABLE):  # its reason, and no test number
            row = {k: np.nan if k.startswith(HIDDEN) else v for k, v in row.items()}
            row[NOT_APPLICABLE] = r[NOT_APPLICABLE]
        rows.append(row)
    frame = pd.DataFrame(rows)
    numeric = [c for c in frame if c.startswith(("test_", "val_", "group:", "class:", "live:", "n_test:")) or c in COST]
    numeric += [c for c in RECORDED_COST if c in frame]
    return frame.astype({c: float for c in numeric})  # a metric missing (None) in every run is NaN, not object


def ci_low(values: pd.Series) -> float:
    """Lower bound of the 95% bootstrap interval of the mean (named for the leaderboard's column)."""
    return bootstrap_ci(values)[0]


def ci_high(values: pd.Series) -> float:
    """Upper bound of the 95% bootstrap interval of the mean."""
    return bootstrap_ci(values)[1]


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and 95% bootstrap CI over seeds per (dataset, method, family) of the chosen trial's runs (see
    :func:`~benchmark.core.selection.select_trials`): columns ``<metric>_{mean,std,ci_low,ci_high}``, ``n_seeds``,
    ``select``, ``trials`` (compared on the seeds ``tuned_on``), the chosen ``trial`` and its ``hparams``, the mean
    cost, how many of its runs a rerun may not repeat (``unrepeatable``: CUDA runs without deterministic
    algorithms; the column only when some run is such), what the method read in training (``labels``: classes,
    training groups or validation groups; where the runs record it), and the paired test of the :func:`headline`
    metric against ERM (e.g. ``wga_p_vs_erm``, ``wga_win_vs_erm``); ``not_applicable``, the first of its runs'
    reasons, where some run's method was not applicable."""
    metrics = [c for c in runs.columns if c.startswith("test_")]
    grouped = runs.groupby(KEYS, sort=False)
    board = grouped[metrics].agg(["mean", "std", ci_low, ci_high])
    board.columns = [f"{col[5:]}_{stat}" for col, stat in board.columns]
    board["n_seeds"] = grouped["seed"].nunique()
    for column in ("select", "trials", "tuned_on", "trial", "hparams"):
        board[column] = grouped[column].first()
    for cost in COST:
        board[cost] = grouped[cost].mean()
    if "unrepeatable" in runs and runs["unrepeatable"].any():  # a column only where it has something to say
        board["unrepeatable"] = grouped["unrepeatable"].sum()
    if "labels" in runs:  # runs that record what their method read in training
        board["labels"] = grouped["labels"].first()
    if NOT_APPLICABLE in runs:
        board[NOT_APPLICABLE] = grouped[NOT_APPLICABLE].first()
    board = board.reset_index()
    board.insert(2, "label", family_labels(board, grouped["train"].first().to_list()))
    return paired_tests(board, runs)


def family_labels(board: pd.DataFrame, train: list[str]) -> list[str]:
    """Each row's method name; where a dataset's method has several rows (sweeps with other fixed settings),
    the hparams and training settings (``train``: JSON per row) that tell them apart, e.g. ``focal (gamma=1.0)``
    or ``erm (train.lr=0.002)``, and the family id where none do (other data options)."""
    labels = list(board["method"])
    settings = [
        {**json.loads(h), **{f"train.{k}": v for k, v in json.loads(t).items()}}
        for h, t in zip(board["hparams"], train)
    ]
    for _, rows in board.groupby(["dataset", "method"], sort=False):
        if len(rows) < 2:
            continue
        mine = [settings[i] for i in rows.index]
        keys = dict.fromkeys(k for s in mine for k in s)
        differ = [k for k in keys if len({json.dumps(s.get(k)) for s in mine}) > 1]
        for i, setting in zip(rows.index, mine):
            shown = ", ".join(f"{k}={setting.get(k)}" for k in differ) or board.loc[i, "family_id"][:6]
            labels[i] = f"{board.loc[i, 'method']} ({shown})"
    return labels


def paired_tests(board: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Add the p-value of a paired t-test over shared seeds of each row against the first ERM row on the test
    :func:`headline` metric, and whether the row clearly wins (p < 0.05, better mean over those seeds). NaN/False
    without an ERM row."""
    tested = headline(runs.columns)
    seeds = [rows.set_index("seed")[f"test_{tested}"] for _, rows in runs.groupby(KEYS, sort=False)]
    baseline = np.flatnonzero(board["method"] == BASELINE)
    tests = [None] * len(board)
    if len(baseline):
        reference = seeds[baseline[0]]
        tests = [None if i == baseline[0] else paired_ttest(s, reference) for i, s in enumerate(seeds)]
    return board.assign(
        **{
            f"{tested}_p_vs_{BASELINE}": [np.nan if t is None else t.pvalue for t in tests],
            f"{tested}_win_vs_{BASELINE}": [t is not None and t.pvalue < ALPHA and t.diff > 0 for t in tests],
        }
    )


def group_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, family) over the chosen trial's runs: the mean test accuracy of every group (columns
    named by the group), with the group's test size (``n_test:<group>``) and the Wilson 95% interval of that
    mean accuracy on that many samples (``wilson_low:<group>``, ``wilson_high:<group>``), and the mean share of
    live latent units on val (``live:<group>``), where the runs record them."""
    names = [c[len("group:") :] for c in runs.columns if c.startswith("group:")]
    columns = [c for c in runs.columns if c.startswith(("group:", "live:", "n_test:"))]
    table = runs.groupby(KEYS, sort=False)[columns].mean().reset_index()
    table = table.rename(columns={f"group:{g}": g for g in names})
    for g in names:
        if f"n_test:{g}" in table:
            sizes = table[f"n_test:{g}"].fillna(0).astype(int)  # 0 (no interval) for runs that did not record it
            bounds = [wilson_interval(acc, n) for acc, n in zip(table[g], sizes)]
            table[f"wilson_low:{g}"], table[f"wilson_high:{g}"] = zip(*bounds) if bounds else ((), ())
    return table


def group_names(groups: pd.DataFrame) -> list[str]:
    """The group columns of a :func:`group_table`."""
    return [c for c in groups.columns if c not in KEYS and not c.startswith(PER_GROUP_DERIVED)]


def cost_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, family): total optimizer steps and each stage's, the mean and std over seeds of
    train time, steps/s, peak memory and (runs that record it) the CPU time of training, which does not depend
    on what else ran, and the most runs that shared the machine (``parallel_runs_max``)."""
    grouped = runs.groupby(KEYS, sort=False)
    cpu = ["train_cpu_s"] if runs.get("train_cpu_s", pd.Series(dtype=float)).notna().any() else []
    table = grouped[[*COST, *cpu]].agg(["mean", "std"])
    table.columns = [f"{col}_{stat}" for col, stat in table.columns]
    if runs.get("parallel_runs", pd.Series(dtype=float)).notna().any():
        table["parallel_runs_max"] = grouped["parallel_runs"].max()
    table.insert(0, "stage_steps", grouped["stage_steps"].first())
    table.insert(0, "steps", grouped["steps"].first())
    return table.reset_index()


def combined_table(boards: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each dataset's :func:`headline` metric (mean and std over seeds) of every method (row label): columns
    ``method``, then ``<dataset>_mean`` and ``<dataset>_std`` per dataset, and ``<dataset>_not_applicable`` (the
    reason, where a method was not applicable there) after a board that has such rows."""
    parts = []
    for name, board in boards.items():
        metric = headline(board.columns)
        shown = [f"{metric}_mean", f"{metric}_std", *([NOT_APPLICABLE] if NOT_APPLICABLE in board else [])]
        columns = board.set_index("label")[shown]
        parts.append(columns.set_axis([f"{name}_{c.removeprefix(metric + '_')}" for c in shown], axis=1))
    return pd.concat(parts, axis=1).rename_axis("method").reset_index()


def curves_frame(results: list[dict], runs: pd.DataFrame) -> pd.DataFrame:
    """Val worst-group accuracy at every evaluation of the chosen runs, every stage's where the run recorded its
    ``curve`` (else its final stage's history): columns ``label``, ``seed``, ``stage``, ``epoch``, ``val_wga``
    and ``selected`` (the run's selected evaluation); ``runs`` carries each run's label and selected epoch."""
    by_id = {r["run_id"]: r for r in results if r.get("status") == "ok"}
    rows = []
    for run in runs.itertuples():
        result = by_id[run.run_id]
        history = [{"stage": None, "epoch": h["epoch"], "val_wga": h["val"]["wga"]} for h in result["history"]]
        for point in result.get("curve") or history:
            selected = point["epoch"] == run.selected_epoch
            rows.append({"label": run.label, "seed": run.seed, **point, "selected": selected})
    return pd.DataFrame(rows).astype({"val_wga": float})


def shown_metrics(board: pd.DataFrame, columns: Sequence[str] | None = None) -> list[str]:
    """``columns`` that the board has, or by default the :func:`headline` metric, the dataset's extra summaries
    (adj_acc, many/medium/few) if any, the other group metrics, then the class-wise ones it has (wca,
    easy/middle/hard)."""
    if columns:
        return [c for c in columns if f"{c}_mean" in board]
    names = [c[: -len("_mean")] for c in board.columns if c.endswith("_mean")]
    extras = [c for c in names if c not in ORDER and c not in CLASSWISE]
    first = headline(board.columns)
    if first == "wga":
        return [*ORDER, *extras, *(c for c in CLASSWISE if c in names)]
    return [first, *extras, *(c for c in ORDER if c != first), *(c for c in CLASSWISE if c in names)]


def dataset_frames(results: list[dict], select: str = "val-wga") -> dict[str, pd.DataFrame]:
    """Per dataset of ``results``: :func:`runs_frame` of its runs alone (every trial), so that other datasets'
    groups, classes and extra metrics (e.g. adj_acc) are not its columns, and its columns keep their order
    whatever other datasets ``results`` holds."""
    names = dict.fromkeys(r.get("dataset") for r in results if r.get("status") == "ok")
    return {name: runs_frame([r for r in results if r.get("dataset") == name], select) for name in names}


def dataset_boards(
    results: list[dict], select: str = "val-wga", columns: Sequence[str] | None = None
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per dataset of ``results``: its runs of the trial each method's family selects under ``select`` (one row
    per run, without other datasets' columns) and its leaderboard: :func:`boards_of` of :func:`dataset_frames`."""
    return boards_of(dataset_frames(results, select), select, columns)


def boards_of(
    frames: dict[str, pd.DataFrame], select: str, columns: Sequence[str] | None = None
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Per dataset of ``frames`` (:func:`dataset_frames` under ``select``): the runs of the trial each method's
    family selects (:func:`not_applicable_families`) and the leaderboard. Where ERM's runs record per-class accuracy
    of at least 3 classes, the runs get MR²'s class-wise ``test_easy``/``test_middle``/``test_hard``
    (:mod:`benchmark.report.difficulty`), the leaderboard their means etc., and ``board.attrs["difficulty"]`` the split
    (thirds, the ERM row's ``label``, ``seeds`` and ``trial``). ``columns``, if given, must be metrics of the
    runs."""
    if not frames:
        return {}
    seen = list(dict.fromkeys(c for frame in frames.values() for c in frame.columns))
    known = [c[len("test_") :] for c in seen if c.startswith("test_")]
    known += list(DIFFICULTY) if any(c.startswith("class:") for c in seen) else []
    for column in columns or ():
        if column not in known:
            raise BenchError(
                f"bad --columns entry '{column}': not a metric of these runs; choose from {', '.join(known)}"
            )
    tables = {}
    for dataset, frame in frames.items():
        dataset_runs = not_applicable_families(select_trials(frame, select).reset_index(drop=True))
        dataset_runs, split = add_difficulty(dataset_runs, BASELINE)
        board = leaderboard(dataset_runs)
        if split is not None:
            row = (board["method"] == split["baseline"]) & (board["family_id"] == split["family_id"])
            board.attrs["difficulty"] = {**split, "label": str(board.loc[row, "label"].iloc[0])}
        tables[str(dataset)] = (dataset_runs, board)
    return tables
