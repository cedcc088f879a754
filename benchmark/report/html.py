"""The self-contained HTML page of one dataset's report: its three tables and its plots inline."""

from __future__ import annotations

import base64
import datetime
import json
from string import Template
from typing import Sequence

import pandas as pd

from benchmark.report.formats import HTML, html_table
from benchmark.report.frames import BASELINE, HEADLINE_NAMES, headline
from benchmark.report.rows import applicability_note, cost_rows, group_rows, leaderboard_rows, win_note
from benchmark.report.validity import CITATION
from benchmark.report.validity_files import summary_lines

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title: bench report</title>
<style>
body { font-family: sans-serif; margin: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.3em 0.8em; text-align: right; border-bottom: 1px solid #ccc; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
</style>
</head>
<body>
<h1>$title</h1>
<p>Test metrics (%), mean ± std over seeds. Model selection (epoch and hparam trial):
$select.</p>
<h2>Leaderboard</h2>
$leaderboard
$notes
<h2>Test accuracy per group</h2>
$groups
<h2>Compute cost per run</h2>
$cost
<h2>Chosen settings, intervals and tests</h2>
$details
$validity
<h2>Plots</h2>
$figures
<p><small>$footer</small></p>
</body>
</html>
""")


def details_rows(board: pd.DataFrame, precision: int):
    """Per row of the board: the chosen trial of how many, its hyperparameters, the 95% bootstrap interval of the
    mean test headline metric (WGA, or balanced accuracy on a long-tailed dataset) and the paired t-test's p-value
    against ERM."""
    tested = headline(board.columns)
    metric = HEADLINE_NAMES[tested]
    header = ["Method", "Trial", "Hyperparameters", f"{metric} 95% CI", f"p vs {BASELINE} ({metric})"]
    rows = []
    for row in board.itertuples():
        low, high = getattr(row, f"{tested}_ci_low"), getattr(row, f"{tested}_ci_high")
        interval = "–" if pd.isna(low) else f"[{low:.{precision}f}, {high:.{precision}f}]"
        p = getattr(row, f"{tested}_p_vs_{BASELINE}")
        hparams = ", ".join(f"{k}={v}" for k, v in json.loads(row.hparams).items()) or "defaults"
        trial = f"{row.trial} (best of {row.trials})"
        rows.append([HTML.escape(row.label), trial, HTML.escape(hparams), interval, "–" if pd.isna(p) else f"{p:.3g}"])
    return header, rows


def footer(environments: Sequence[dict]) -> str:
    """The date the page was written and the software the runs recorded (those that record their environment)."""
    written = f"Written {datetime.date.today().isoformat()} by bench report"
    recorded = [e for e in environments if e]
    if not recorded:
        return HTML.escape(written + ".")
    versions = sorted({f"{name} {e['packages'].get(name)}" for e in recorded for name in ("torch", "numpy")})
    commits = sorted({str(e.get("git_commit")) for e in recorded})
    pythons = sorted({e["python"] for e in recorded})
    text = f"{written}; runs recorded Python {', '.join(pythons)}, {', '.join(versions)}, commit {', '.join(commits)}."
    return HTML.escape(text)


def validity_section(summary: dict, precision: int) -> str:
    """The Validity section: the dataset's ERM failure and discriminative power, as a list (no table)."""
    items = "".join(f"<li>{HTML.escape(line)}</li>\n" for line in summary_lines(summary, precision))
    return f"<h2>Validity</h2>\n<p>Is this dataset a valid benchmark ({HTML.escape(CITATION)})?</p>\n<ul>\n{items}</ul>"


def to_html(
    dataset: str,
    board: pd.DataFrame,
    groups: pd.DataFrame,
    cost: pd.DataFrame,
    images: dict[str, bytes],
    metrics: Sequence[str],
    precision: int = 1,
    environments: Sequence[dict] = (),
    validity: dict | None = None,
) -> str:
    """One self-contained page: the three tables, the chosen settings with intervals and p-values, the dataset's
    validity diagnostics (``validity``: a :func:`~benchmark.report.validity.dataset_validity` summary, if given), the
    plots as base64 data: URIs, and the date and recorded software versions (``environments``: the runs' records)."""
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for name, png in images.items()
    )
    return PAGE.substitute(
        title=HTML.escape(dataset),
        select=HTML.escape(board["select"].iloc[0]),
        leaderboard=html_table(*leaderboard_rows(board, HTML, metrics, precision)),
        notes="".join(f"<p>{note}</p>" for note in [*win_note(board, HTML), *applicability_note(board, HTML)]),
        groups=html_table(*group_rows(board, groups, HTML, precision)),
        cost=html_table(*cost_rows(board, cost, HTML)),
        details=html_table(*details_rows(board, precision)),
        validity="" if validity is None else validity_section(validity, precision),
        figures=figures,
        footer=footer(environments),
    )
