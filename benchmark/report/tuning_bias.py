"""How much does tuning on some seeds flatter those seeds (``bench tuning-bias``)? For each dataset and method of a
tuned sweep (trials on the tuning seeds, the winner on every seed), the winner's mean test WGA on the seeds it was
chosen on against its mean over the other seeds, and the rank of the former among the winner's seeds (1: above all
of the others).

The winner and its tuning seeds are the leaderboard's (:func:`benchmark.core.selection.select_trials` under
val-wga: the trial with the best mean val WGA on the seeds every trial ran on, ``tuned_on``). Wherever val and test
agree and the trials differ by chance, the tuning seeds' test WGA is biased upwards; the leaderboards average them
with the other seeds.
"""

from __future__ import annotations

from benchmark.core.selection import FAMILY_KEYS, tuned_seeds
from benchmark.report.formats import markdown
from benchmark.report.frames import dataset_boards

HEADER = ["Dataset", "Method", "Tuning seeds' test WGA", "Other seeds' mean", "Gap", "Rank"]


def tuning_bias(results: list[dict]) -> tuple[list[dict], set[str]]:
    """One row per dataset and leaderboard family of ``results`` (``dataset``, ``method``, ``tuned``: the winner's
    mean test WGA on its tuning seeds, ``others``: its mean on the other seeds, ``rank``), sorted by dataset; and
    the run ids of the winners' runs on the other seeds (the held-out seeds)."""
    rows, held_out = [], set()
    for dataset, (runs, _) in sorted(dataset_boards(results, "val-wga").items()):
        for (_, method, _), family in runs.groupby(FAMILY_KEYS, sort=True):
            on_tuning = family["seed"].isin(tuned_seeds(family["tuned_on"].iloc[0]))
            tuned, others = family.loc[on_tuning, "test_wga"].mean(), family.loc[~on_tuning, "test_wga"]
            rank = 1 + int((others > tuned).sum())
            rows.append({"dataset": dataset, "method": method, "tuned": tuned, "others": others.mean(), "rank": rank})
            held_out |= set(family.loc[~on_tuning, "run_id"])
    return rows, held_out


def tuning_bias_table(rows: list[dict]) -> str:
    """:func:`tuning_bias`'s rows as a Markdown table (one decimal; the gap signed)."""
    cells = [
        [r["dataset"], r["method"], f"{r['tuned']:.1f}", f"{r['others']:.1f}", f"{r['tuned'] - r['others']:+.1f}",
         str(r["rank"])]
        for r in rows
    ]  # fmt: skip
    return "\n".join(markdown(HEADER, cells))
