"""studies/: attainable.py (each group's best val accuracy over a run's curve, runs found through the store), an
entry in studies/README.md for every study, and every script, study and ``bench`` command the READMEs name exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import typer

from benchmark.cli import app
from benchmark.runs.store import iter_results

ROOT = Path(__file__).resolve().parents[1]
STUDIES = ROOT / "studies"
RUNS = ROOT / "reports" / "tuned" / "runs"


def test_attainable_takes_each_groups_best_val_accuracy_over_the_curve(tmp_path):
    """Three committed runs (two of the winner's configuration, one of another trial) with their log.jsonl replaced
    by known curves: per group the maximum over evaluations, min / mean over seeds; --winners: the configuration
    on the most seeds."""
    runs = [r for r in iter_results(RUNS, "digits-lt") if r["method"] == "groupdro"]
    winner = Counter(r["config_id"] for r in runs).most_common(1)[0][0]
    chosen = [r for r in runs if r["config_id"] == winner][:2] + [next(r for r in runs if r["config_id"] != winner)]
    curves = [[(50.0, 90.0), (80.0, 70.0)], [(60.0, 95.0), (40.0, None)], [(10.0, 10.0)]]
    for run, evals in zip(chosen, curves):
        folder = tmp_path / "digits-lt" / "groupdro" / run["run_id"]
        shutil.copytree(RUNS / "digits-lt" / "groupdro" / run["run_id"], folder)
        lines = [{"epoch": e, "val": {"groups": {"g0": g0, "g1": g1}}} for e, (g0, g1) in enumerate(evals, 1)]
        (folder / "log.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (tmp_path / "digits-lt" / "groupdro" / "unfinished").mkdir()  # no result.json: not read
    command = [sys.executable, str(STUDIES / "attainable.py"), "--results", str(tmp_path), "--methods", "groupdro"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    heading = "digits-lt groupdro (best val accuracy, min / mean over seeds):"
    assert proc.stdout.strip() == f"{heading} g0 10.0 / 50.0; g1 10.0 / 65.0"
    winners = subprocess.run([*command, "--winners"], capture_output=True, text=True, timeout=120)
    assert winners.stdout.strip() == f"{heading} g0 60.0 / 70.0; g1 90.0 / 92.5"


def test_every_study_has_an_entry_with_its_command_and_every_output_is_named():
    """Each file of studies/ is a study with its own entry (question, command, output, where it is used) or the
    output an entry names."""
    sections = (STUDIES / "README.md").read_text().split("\n## ")[1:]
    entries = [section.split(":")[0] for section in sections]
    outputs = [name for s in sections for name in re.findall(r"`studies/([\w.]+)`", s.split("**Output.**")[1])]
    files = sorted(p.name for p in STUDIES.iterdir() if p.is_file() and p.name != "README.md")
    assert sorted({*entries, *outputs}) == files
    for section in sections:
        assert all(part in section for part in ("**Question.**", "**Command", "**Output.**", "**Used in.**")), section


def test_the_scripts_studies_and_commands_the_readmes_name_exist():
    commands = {command.name for command in typer.main.get_command(app).commands.values()}
    for readme in (ROOT / "README.md", STUDIES / "README.md"):
        text = readme.read_text()
        paths = re.findall(r"(?:python|bash) ((?:scripts|studies)/[a-z0-9_.]+)", text)
        paths += re.findall(r"`((?:scripts|studies)/[a-z0-9_.]+)`", text)
        assert paths, readme
        for path in paths:
            assert (ROOT / path).is_file(), f"{readme.name} names {path}"
        for name in re.findall(r"`bench ([a-z][a-z-]*)", text):
            assert name in commands, f"{readme.name} names bench {name}"
