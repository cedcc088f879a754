"""Report plots as PNG bytes, drawn off-screen (Agg canvas, no display, no pyplot state): per-group test accuracy
by method, worst-group vs average test accuracy, and training curves of val worst-group accuracy."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110


def new_axes(width: float = 7.0, height: float = 4.0):
    """A figure on an Agg canvas and its seaborn-styled axes."""
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    with sns.axes_style("whitegrid"):
        return figure, figure.subplots()


def to_png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def legend_outside(ax) -> None:
    """The legend right of the axes, so that it never hides data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def group_bars(dataset: str, runs: pd.DataFrame, palette: dict) -> bytes:
    """Grouped bars: mean test accuracy of every group per method, error bars one std over seeds."""
    groups = [c for c in runs.columns if c.startswith("group:")]
    long = runs.melt(id_vars=["label", "seed"], value_vars=groups, var_name="group", value_name="accuracy")
    long["group"] = long["group"].str[len("group:") :]
    figure, ax = new_axes(min(16.0, max(6.0, 1.0 + 0.25 * len(groups) * len(palette))))
    sns.barplot(long, x="group", y="accuracy", hue="label", palette=palette, errorbar="sd", capsize=0.1, ax=ax)
    ax.set(title=f"{dataset}: test accuracy per group", xlabel="group", ylabel="test accuracy (%)", ylim=(0, 100))
    legend_outside(ax)
    return to_png(figure)


def wga_vs_acc(dataset: str, board: pd.DataFrame, palette: dict) -> bytes:
    """One point per method at (average, worst-group) test accuracy, error bars one std over seeds."""
    figure, ax = new_axes(6.0, 4.5)
    for row in board.itertuples():
        ax.errorbar(
            row.acc_mean,
            row.wga_mean,
            xerr=None if np.isnan(row.acc_std) else row.acc_std,
            yerr=None if np.isnan(row.wga_std) else row.wga_std,
            fmt="o",
            capsize=3,
            color=palette[row.label],
            label=row.label,
        )
    ax.set(title=f"{dataset}: worst-group vs average accuracy", xlabel="test accuracy (%)", ylabel="test WGA (%)")
    legend_outside(ax)
    return to_png(figure)


def training_curves(dataset: str, curves: pd.DataFrame, palette: dict) -> bytes:
    """Val worst-group accuracy per epoch of the chosen runs: mean over seeds, band one std."""
    figure, ax = new_axes()
    marker = "o" if curves["epoch"].nunique() <= 30 else None  # markers on long runs would hide the lines
    sns.lineplot(curves, x="epoch", y="val_wga", hue="label", palette=palette, errorbar="sd", marker=marker, ax=ax)
    ax.set(title=f"{dataset}: training curves (mean ± std over seeds)", xlabel="epoch", ylabel="val WGA (%)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax)
    return to_png(figure)


def report_plots(dataset: str, board: pd.DataFrame, runs: pd.DataFrame, curves: pd.DataFrame) -> dict[str, bytes]:
    """The three plots by file name; ``runs`` (one row per chosen run) and ``curves`` carry each method's
    ``label`` from ``board``, and every method keeps its colour across plots."""
    palette = dict(zip(board["label"], sns.color_palette(n_colors=len(board))))
    return {
        "groups.png": group_bars(dataset, runs, palette),
        "wga_vs_acc.png": wga_vs_acc(dataset, board, palette),
        "curves.png": training_curves(dataset, curves, palette),
    }
