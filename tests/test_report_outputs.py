"""Report files besides LaTeX: CSV round-trips, well-formed Markdown, PNG plots, a self-contained HTML page and
the combined table over datasets."""

from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_report import fake_result, markdown_tables, table_rows

from benchmark.core.metrics import group_metrics
from benchmark.report.files import write_reports

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PLOTS = ("groups.png", "wga_vs_acc.png", "curves.png")


def trained(method: str, seed: int, final: list[int], dataset: str = "toy", epochs: int = 3) -> dict:
    """A run whose val and test accuracy climb to ``final`` (correct of 10 per group) over ``epochs`` epochs."""
    result = fake_result(method, seed, final, dataset=dataset)
    result["history"] = [
        {"epoch": e, "val": m, "test": m}
        for e in range(1, epochs + 1)
        for m in [group_metrics([c - (epochs - e) for c in final], [10, 10], ["g0", "g1"])]
    ]
    return result


def suite(dataset: str = "toy") -> list[dict]:
    """erm and groupdro over three seeds, jtt over one."""
    runs = [trained("erm", s, c, dataset) for s, c in enumerate(([9, 5], [8, 6], [10, 4]))]
    runs += [trained("groupdro", s, c, dataset) for s, c in enumerate(([7, 9], [8, 9], [7, 8]))]
    return [*runs, trained("jtt", 0, [6, 7], dataset)]


def test_csv_round_trips_with_float_metric_columns(tmp_path):
    board = write_reports(suite(), tmp_path, ("csv",))["toy"]
    csv = pd.read_csv(tmp_path / "toy" / "leaderboard.csv")
    assert list(csv.columns) == list(board.columns) and list(csv["label"]) == ["erm", "groupdro", "jtt"]
    floats = [f"{m}_{s}" for m in ("wga", "bga", "delta_acc", "acc", "mean_group_acc") for s in ("mean", "std")]
    floats += ["wga_ci_low", "wga_ci_high", "wga_p_vs_erm", "train_time_s", "steps_per_s", "peak_memory_mb"]
    assert all(csv[c].dtype == np.float64 for c in floats), csv.dtypes[floats]
    assert csv["n_seeds"].dtype == np.int64 and csv["wga_win_vs_erm"].dtype == bool
    np.testing.assert_allclose(csv[floats].to_numpy(), board[floats].to_numpy(dtype=float), rtol=1e-3, atol=5e-5)
    groups = pd.read_csv(tmp_path / "toy" / "groups.csv")
    cost = pd.read_csv(tmp_path / "toy" / "cost.csv")
    assert groups[["g0", "g1"]].dtypes.eq(np.float64).all() and cost.filter(like="_mean").dtypes.eq(np.float64).all()
    assert not (tmp_path / "toy" / "leaderboard.md").exists() and not list(tmp_path.rglob("*.png"))


def test_markdown_renders_as_tables(tmp_path):
    write_reports(suite("toy") + suite("other"), tmp_path, ("md",))
    for path, count in ((tmp_path / "toy" / "leaderboard.md", 3), (tmp_path / "combined.md", 1)):
        tables = markdown_tables(path.read_text())
        assert len(tables) == count  # leaderboard, per-group accuracy, compute cost
        for table in tables:
            cells = [line.count("|") - 1 for line in table]
            assert re.fullmatch(r"\|(---\|)+", table[1]) and table[1].count("---") == cells[0]
            assert all(line.startswith("| ") and line.endswith(" |") for line in table[:1] + table[2:])
            assert set(cells) == {cells[0]} and len(table) == 2 + 3  # every row has the header's cells; 3 methods


def test_plots_are_written_as_valid_pngs(tmp_path):
    write_reports(suite(), tmp_path, ("png",))
    for name in PLOTS:
        data = (tmp_path / "toy" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000, name
        with Image.open(tmp_path / "toy" / name) as image:
            image.verify()
            assert image.size[0] > 300 and image.size[1] > 200
    assert not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob("*.csv"))


def test_curves_cover_every_stage_and_mark_the_selected_evaluation():
    from benchmark.report.frames import curves_frame, runs_frame

    staged = trained("jtt", 0, [6, 7], epochs=2)
    staged["history"] = [{**h, "epoch": h["epoch"] + 1} for h in staged["history"]]  # stage 2: epochs 2 and 3
    staged["curve"] = [{"stage": s, "epoch": e, "val_wga": w} for s, e, w in [("identify", 1, 10.0),
                       ("upweighted", 2, 50.0), ("upweighted", 3, 60.0)]]  # fmt: skip
    old = trained("erm", 0, [9, 5])  # a run from before curves were recorded: its final stage's history
    runs = runs_frame([staged, old]).assign(label=["jtt", "erm"])
    curves = curves_frame([staged, old], runs)
    jtt = curves[curves["label"] == "jtt"]
    assert jtt["stage"].tolist() == ["identify", "upweighted", "upweighted"] and jtt["epoch"].tolist() == [1, 2, 3]
    assert jtt["selected"].tolist() == [False, False, True]
    erm = curves[curves["label"] == "erm"]
    assert erm["epoch"].tolist() == [1, 2, 3] and erm["stage"].isna().all() and erm["selected"].sum() == 1


def test_html_references_only_what_it_embeds(tmp_path):
    write_reports(suite(), tmp_path, ("html",))
    html = (tmp_path / "toy" / "report.html").read_text()
    references = re.findall(r"""\b(?:src|href|srcset|data|poster|action)\s*=\s*["']?([^"'\s>]*)""", html, re.I)
    assert references and all(r.startswith("data:") or r.startswith("#") for r in references), references
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"url\(|@import|<link|<script|<iframe|<object|<embed|https?:|//", text, re.I)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(PLOTS) and all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert html.count("<table>") == 4 and "<b>73.3 ± 5.8</b>" in html
    details = html.split("Chosen settings", 1)[1].split("</table>", 1)[0]
    assert "<td>erm</td><td>0 (best of 1)</td><td>defaults</td>" in details and "p vs erm" in details
    assert re.search(r"<td>groupdro</td>.*<td>\[[\d.]+, [\d.]+\]</td><td>0\.\d+</td>", details), details
    assert "Written 20" in html and "by bench report" in html
    assert not list(tmp_path.rglob("*.png")), "html alone embeds the plots without writing them"


def test_combined_table_has_one_column_per_dataset(tmp_path):
    results = suite("toy") + suite("other") + [r for r in suite("third") if r["method"] != "jtt"]
    boards = write_reports(results, tmp_path, ("csv", "md", "tex"))
    rows = table_rows((tmp_path / "combined.md").read_text())
    assert rows["header"] == ["Method", "toy WGA ↑", "other WGA ↑", "third WGA ↑"]
    assert rows["groupdro"] == ["**73.3 ± 5.8**"] * 3 and rows["jtt"] == ["<u>60.0</u>", "<u>60.0</u>", "–"]
    csv = pd.read_csv(tmp_path / "combined.csv")
    assert list(csv.columns) == ["method"] + [f"{d}_{s}" for d in ("toy", "other", "third") for s in ("mean", "std")]
    assert csv.set_index("method").loc["erm", "other_mean"] == pytest.approx(boards["other"]["wga_mean"].iloc[0])
    tex = (tmp_path / "combined.tex").read_text()
    assert r"\begin{tabular}{lccc}" in tex and r"Method & toy WGA $\uparrow$ & other WGA $\uparrow$ & third" in tex


def test_one_dataset_has_no_combined_table(tmp_path):
    write_reports(suite(), tmp_path, ("csv", "md", "tex"))
    assert not list(tmp_path.glob("combined.*"))


def test_rows_a_rerun_may_not_repeat_are_named_under_the_leaderboard(tmp_path):
    """CUDA runs without deterministic algorithms (result.json: deterministic false) get a column and a note;
    CPU runs never do (they repeat for a given thread count)."""
    runs = suite()
    for run in runs[:2]:  # two of erm's three runs
        run |= {"device": "cuda:0", "deterministic": False}
    runs[3] |= {"device": "cuda:0", "deterministic": True}
    board = write_reports(runs, tmp_path, ("md", "csv"))["toy"]
    assert board.set_index("label")["unrepeatable"].to_dict() == {"erm": 2, "groupdro": 0, "jtt": 0}
    text = (tmp_path / "toy" / "leaderboard.md").read_text()
    assert "Not repeatable bitwise: erm (2 of 3 runs) trained on CUDA without deterministic algorithms" in text
    clean = write_reports(suite(), tmp_path / "cpu", ("md",))["toy"]
    assert "unrepeatable" not in clean
    assert "Not repeatable" not in (tmp_path / "cpu" / "toy" / "leaderboard.md").read_text()
