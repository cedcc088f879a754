"""The self-contained HTML page of one dataset's report: its three tables and its plots inline."""

from __future__ import annotations

import base64
from string import Template
from typing import Sequence

import pandas as pd

from benchmark.report_rows import cost_rows, group_rows, leaderboard_rows, win_note
from benchmark.tables import HTML, html_table

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
<h2>Plots</h2>
$figures
</body>
</html>
""")


def to_html(
    dataset: str,
    board: pd.DataFrame,
    groups: pd.DataFrame,
    cost: pd.DataFrame,
    images: dict[str, bytes],
    metrics: Sequence[str],
    precision: int = 1,
) -> str:
    """One self-contained page: the three tables and the plots as base64 data: URIs."""
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'
        for name, png in images.items()
    )
    return PAGE.substitute(
        title=HTML.escape(dataset),
        select=HTML.escape(board["select"].iloc[0]),
        leaderboard=html_table(*leaderboard_rows(board, HTML, metrics, precision)),
        notes="".join(f"<p>{note}</p>" for note in win_note(board, HTML)),
        groups=html_table(*group_rows(board, groups, HTML, precision)),
        cost=html_table(*cost_rows(board, cost, HTML)),
        figures=figures,
    )
