"""The live sweep view: counts of done / running / failed runs and the estimated time left."""

from __future__ import annotations

import io

from rich.console import Console

from benchmark.config import RunSpec, TrainConfig
from benchmark.progress import RichProgress, format_seconds
from benchmark.runs import Run


def spec(seed: int) -> Run:
    return Run(RunSpec("toy", {}, "erm", {}, seed, TrainConfig(epochs=2)))


def test_counts_and_remaining_time(monkeypatch):
    clock = iter([0.0, 0.0, 100.0, 130.0])
    monkeypatch.setattr("benchmark.progress.perf_counter", lambda: next(clock))
    console = Console(file=io.StringIO(), width=200)
    view = RichProgress(console, total_runs=5, parallel=2)
    ok = {"status": "ok", "test": {"wga": 50.0, "acc": 60.0}, "wall_time_s": 1.0}
    view.finished(spec(0), ok, skipped=True)
    assert view.summary() == "runs: 1 done, 0 running, 0 failed"
    view.start(spec(1))
    view.start(spec(2))
    assert view.summary() == "runs: 1 done, 2 running, 0 failed"
    view.evaluated(spec(1), {"epoch": 1, "val": {"wga": 40.0}})
    view.finished(spec(1), ok, skipped=False)  # trained 100 s
    view.finished(spec(2), {"status": "failed", "error": "boom"}, skipped=False)  # died after 130 s
    # 2 runs left at a mean of 115 s, 2 at a time
    assert view.summary() == f"runs: 2 done, 0 running, 1 failed, ~{format_seconds(115)} left"
    printed = console.file.getvalue()
    assert (
        "done     erm seed 0" in printed and "finished erm seed 1" in printed and "failed  erm seed 2: boom" in printed
    )


def test_format_seconds():
    assert format_seconds(3725.4) == "1:02:05"
