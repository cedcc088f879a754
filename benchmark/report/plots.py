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


def seeds_title(runs: pd.DataFrame) -> str:
    """``mean ± std over 3 seeds``, or ``one seed`` (no spread to show)."""
    seeds = runs.groupby("label")["seed"].nunique().max()
    return f"mean ± std over {seeds} seeds" if seeds > 1 else "one seed"


def group_bars(dataset: str, runs: pd.DataFrame, palette: dict) -> bytes:
    """Grouped bars: mean test accuracy of every group per method, error bars one std over seeds, each bar's value
    on it, the y axis zoomed to the bars (a 2-point gap shows)."""
    groups = [c for c in runs.columns if c.startswith("group:")]
    long = runs.melt(id_vars=["label", "seed"], value_vars=groups, var_name="group", value_name="accuracy")
    long["group"] = long["group"].str[len("group:") :]
    figure, ax = new_axes(min(16.0, max(6.0, 1.0 + 0.25 * len(groups) * len(palette))))
    sns.barplot(long, x="group", y="accuracy", hue="label", palette=palette, errorbar="sd", capsize=0.1, ax=ax)
    stats = long.groupby(["label", "group"])["accuracy"].agg(["mean", "std"]).fillna(0.0)
    low = max(0.0, 5.0 * np.floor(((stats["mean"] - stats["std"]).min() - 5.0) / 5.0))
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=2)
    title = f"{dataset}: test accuracy per group ({seeds_title(runs)}; y axis from {low:.0f})"
    ax.set(title=title, xlabel="group", ylabel="test accuracy (%)", ylim=(low, 101.0))
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
    """Val worst-group accuracy per epoch of the chosen runs over every stage: mean over seeds with a band of one
    std, a dotted line where a method's next stage starts, and a star at each run's selected evaluation."""
    figure, ax = new_axes()
    marker = "o" if curves["epoch"].nunique() <= 30 else None  # markers on long runs would hide the lines
    sns.lineplot(curves, x="epoch", y="val_wga", hue="label", palette=palette, errorbar="sd", marker=marker, ax=ax)
    for label, points in curves.groupby("label", sort=False):
        starts = points.drop_duplicates("stage").sort_values("epoch")["epoch"].iloc[1:]
        for epoch in starts if points["stage"].notna().all() else []:
            ax.axvline(epoch - 0.5, color=palette[label], linestyle=":", linewidth=1.2)
        chosen = points[points["selected"]]
        ax.scatter(chosen["epoch"], chosen["val_wga"], marker="*", s=90, color=palette[label], edgecolor="black")
    ax.scatter([], [], marker="*", s=90, color="white", edgecolor="black", label="selected evaluation")
    ax.plot([], [], color="grey", linestyle=":", label="next stage starts")
    title = f"{dataset}: training curves, every stage ({seeds_title(curves)})"
    ax.set(title=title, xlabel="epoch", ylabel="val WGA (%)")
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
