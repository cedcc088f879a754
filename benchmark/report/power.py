"""How many seeds, and how large a worst group's test split, a tuned sweep needs to tell methods apart: a power
computation from stored runs (``bench power``).

Per dataset, from its leaderboard's rows (each method's chosen trial, test WGA over seeds): the pooled standard
deviation of the pairs' paired differences (:func:`~benchmark.report.validity.paired_spread`), and the minimum
detectable difference (80% power, a paired t-test at Holm's strictest level: α = 0.05 over the number of pairs) at
each number of seeds. The evaluation's share of that spread: a model evaluated on n independent samples of its
worst group (accuracy p) scores with binomial variance p(1 − p)/n, so two models' paired difference carries at most
2 p(1 − p)/n of it (at most: models that err on the same samples carry less); the rest is training's. With the
worst group's n changed to each of ``sizes`` (and to infinity), the detectable difference follows from the training
share plus the new evaluation share. p is the mean WGA over the rows, n the test size of the group that is most
often the worst.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence

from benchmark.report.formats import markdown
from benchmark.report.frames import dataset_boards
from benchmark.report.stats import detectable_difference
from benchmark.report.validity import ALPHA, POWER, paired_spread
from benchmark.report.validity_files import detectable_text


def worst_group(results: list[dict]) -> tuple[str, int]:
    """The group most often worst on test among ``results`` (each at its selected epoch) and its test size."""
    counts = collections.Counter(min(r["test"]["groups"], key=r["test"]["groups"].get) for r in results)
    group = counts.most_common(1)[0][0]
    return group, results[0]["group_sizes"]["test"][group]


def evaluation_variance(accuracy: float, size: float) -> float:
    """The most variance (points²) two models' evaluation on ``size`` samples at ``accuracy`` (a fraction) adds to
    their paired difference: twice the binomial variance; 0 for infinitely many samples."""
    return 0.0 if size == math.inf else 2 * accuracy * (1 - accuracy) / size * 100**2


def power_header(seeds: Sequence[int], sizes: Sequence[int]) -> list[str]:
    """The columns of :func:`power_row`: the dataset's spread, the detectable difference at each of ``seeds``,
    then at the second-to-last of ``seeds`` with the worst group's test size at each of ``sizes`` and at ∞."""
    header = ["Dataset", "Worst group (test n)", "Mean WGA", "Pair SD", "Evaluation share"]
    return header + [f"MDD {s} seeds" for s in seeds] + [f"MDD {seeds[-2]} seeds, n = {n}" for n in [*sizes, "∞"]]


def power_row(dataset: str, results: list[dict], seeds: Sequence[int], sizes: Sequence[int]) -> list[str]:
    """The cells of :func:`power_header` for one dataset's finished runs (``results``, selected under val-wga)."""
    runs, board = dataset_boards(results, "val-wga")[dataset]
    sd, _ = paired_spread(runs, board, "wga")  # the worst group's binomial noise is the question
    chosen = set(runs["run_id"])
    group, n = worst_group([r for r in results if r["run_id"] in chosen])
    p = board["wga_mean"].mean() / 100
    pairs = len(board) * (len(board) - 1) // 2
    level = ALPHA / pairs
    training = max(sd**2 - evaluation_variance(p, n), 0.0)
    share = f"{min(evaluation_variance(p, n) / sd**2, 1):.0%}" if sd > 0 else "–"  # no spread: nothing to explain
    cells = [dataset, f"{group} ({n})", f"{100 * p:.1f}", f"{sd:.1f}", share]
    cells += [detectable_text(detectable_difference(sd, s, level, POWER), 1) for s in seeds]
    for size in [*sizes, math.inf]:
        spread = math.sqrt(training + evaluation_variance(p, size))
        cells.append(detectable_text(detectable_difference(spread, seeds[-2], level, POWER), 1))
    return cells


def power_table(by_dataset: dict[str, list[dict]], seeds: Sequence[int], sizes: Sequence[int]) -> str:
    """The Markdown table of :func:`power_row` over ``by_dataset`` (dataset → its finished runs), in its order."""
    rows = [power_row(dataset, results, seeds, sizes) for dataset, results in by_dataset.items()]
    return "\n".join(markdown(power_header(seeds, sizes), rows))
