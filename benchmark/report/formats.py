"""Report tables as Markdown, LaTeX (booktabs) and HTML from one cell model.

A table is a header and rows of already-formatted cells; a :class:`Style` says how one output format writes
mean ± std, the best (bold) and second (underlined) value of a column, a clear win over ERM (dagger), a missing
value, the ↑/↓ arrows and escaped text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from benchmark.core.metrics import HIGHER_IS_BETTER

LABELS = {"wga": "WGA", "acc": "Acc", "delta_acc": "ΔAcc", "bga": "BGA", "mean_group_acc": "Mean-group"}
EXTRA_LABELS = {
    **{"adj_acc": "Adj-acc", "many": "Many", "medium": "Medium", "few": "Few"},
    # class-wise: worst-class accuracy, MR²'s Easy/Medium/Hard thirds (Middle: Medium is digits-lt's Many/Medium/Few)
    **{"wca": "WCA", "easy": "Easy", "middle": "Middle", "hard": "Hard"},
}
TEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\(\$\)",  # math dollar: the text one needs a TS1 font that pdflatex would have to generate
    "{": r"\{",
    "}": r"\}",
    "~": r"\~{}",
    "^": r"\^{}",
}


def tex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return re.sub(r"[\\&%_#${}~^]", lambda match: TEX_SPECIAL[match.group()], text)


def label(metric: str) -> str:
    """A metric's column title, e.g. WGA or Adj-acc."""
    return LABELS.get(metric) or EXTRA_LABELS.get(metric, metric)


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (unknown metrics: yes)."""
    return HIGHER_IS_BETTER.get(metric, True)


@dataclass(frozen=True)
class Style:
    plus_minus: str
    best: str
    second: str
    plain: str
    missing: str
    dagger: str
    arrows: tuple[str, str]  # (higher is better, lower is better)
    escape: Callable[[str], str]
    label: Callable[[str], str]

    def header(self, metric: str) -> str:
        """The metric's title with its ↑/↓ arrow."""
        return f"{self.label(metric)} {self.arrows[not higher_is_better(metric)]}"


MARKDOWN = Style(" ± ", "**{}**", "<u>{}</u>", "{}", "–", "†", ("↑", "↓"), lambda t: t.replace("|", r"\|"), label)
HTML = Style(" ± ", "<b>{}</b>", "<u>{}</u>", "{}", "–", "<sup>†</sup>", ("↑", "↓"), html.escape, label)
LATEX = Style(
    r" \pm ",
    r"$\mathbf{{{}}}$",
    r"$\underline{{{}}}$",
    "${}$",
    "--",
    r"\textsuperscript{$\dagger$}",  # math dagger: Computer Modern has it, no TS1 bitmap font
    (r"$\uparrow$", r"$\downarrow$"),
    tex_escape,
    lambda metric: r"$\Delta$Acc" if metric == "delta_acc" else tex_escape(label(metric)),
)


def mean_std(mean: float, std: float, plus_minus: str, precision: int = 1) -> str:
    """``mean ± std`` with ``precision`` decimals; the mean alone when std is missing (one seed)."""
    if mean != mean:
        return "–"
    return f"{mean:.{precision}f}" if std != std else f"{mean:.{precision}f}{plus_minus}{std:.{precision}f}"


def rank_marks(values: pd.Series, higher: bool, precision: int = 1) -> list[str]:
    """'best' / 'second' / '' per value as displayed with ``precision`` decimals (ties share the mark); no marks
    when fewer than two distinct values. Not ``Styler.highlight_max``: it ranks raw values and marks no second."""
    shown = values.round(precision)
    ordered = sorted(set(shown.dropna()), reverse=higher)
    marks = {v: "best" for v in ordered[:1]} | {v: "second" for v in ordered[1:2]}
    return [marks.get(v, "") if len(ordered) > 1 else "" for v in shown]


def cell(
    style: Style, mean: float, std: float = float("nan"), mark: str = "", win: bool = False, precision: int = 1
) -> str:
    """One formatted value: mean ± std, styled by its rank mark, with a dagger for a clear win."""
    if mean != mean:
        return style.missing
    text = {"best": style.best, "second": style.second, "": style.plain}[mark]
    return text.format(mean_std(mean, std, style.plus_minus, precision)) + (style.dagger if win else "")


def ranked_column(
    style: Style, means: pd.Series, stds: pd.Series | None, higher: bool, precision: int, wins: pd.Series | None = None
) -> list[str]:
    """The cells of one column: mean ± std (mean alone without ``stds``), best bold and second underlined, a
    dagger where ``wins`` is true."""
    marks = rank_marks(means, higher, precision)
    stds = pd.Series(np.nan, means.index) if stds is None else stds
    wins = pd.Series(False, means.index) if wins is None else wins
    return [cell(style, *args, precision=precision) for args in zip(means, stds, marks, wins.astype(bool))]


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A pipe table: header, separator, one line per row (pandas' Styler writes no Markdown)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def latex(header: Sequence[str], rows: Sequence[Sequence[str]], align: str, notes: Sequence[str] = ()) -> list[str]:
    """A booktabs tabular; each note is a full-width line under the bottom rule. Not ``Styler.to_latex``: it puts
    nothing under ``\\bottomrule`` and needs jinja2, which the project does not declare."""
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    lines += [" & ".join(row) + r" \\" for row in rows]
    lines.append(r"\bottomrule")
    lines += [rf"\multicolumn{{{len(header)}}}{{l}}{{\footnotesize {note}}} \\" for note in notes]
    return [*lines, r"\end{tabular}"]


def latex_file(tabular: Sequence[str], comments: Sequence[str], standalone: bool) -> str:
    """A tabular with ``%`` comment lines; with ``standalone`` a complete document that compiles with pdflatex to
    a page cropped to the table (the tabular is boxed and the page set to the box's size: the ``standalone``
    class is not in texlive-latex-recommended)."""
    head = [f"% {c}" for c in comments]
    if not standalone:
        return "\n".join([r"% generated by bench report; needs \usepackage{booktabs}", *head, *tabular]) + "\n"
    preamble = [
        "% generated by bench report: compile with pdflatex (a page cropped to the table)",
        *head,
        r"\documentclass{article}",
        r"\usepackage{booktabs}",
        r"\pagestyle{empty}",
        r"\pdfobjcompresslevel=0",
        r"\newsavebox{\benchtable}",
        r"\begin{document}",
        r"\begin{lrbox}{\benchtable}",
    ]
    crop = [
        r"\end{lrbox}",
        r"\pdfpagewidth=\dimexpr\wd\benchtable+4pt\relax",
        r"\pdfpageheight=\dimexpr\ht\benchtable+\dp\benchtable+4pt\relax",
        r"\hoffset=-1in \voffset=-1in \oddsidemargin=2pt \evensidemargin=2pt \topmargin=2pt",
        r"\headheight=0pt \headsep=0pt \topskip=0pt \textwidth=\wd\benchtable \parindent=0pt",
        r"\noindent\usebox{\benchtable}",
    ]
    return "\n".join([*preamble, *tabular, *crop, r"\end{document}"]) + "\n"


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table of already-escaped cells (``Styler.to_html`` adds ids, classes and a <style> block)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"
