"""The live sweep view: counts of done / running / failed runs and the estimated time left."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress as RichBars
from rich.progress import TimeRemainingColumn

from benchmark.runs.events import Evaluated, RunFinished, RunStarted, SweepBegun
from benchmark.runs.spec import Run, RunSpec, TrainConfig
from benchmark.sweeps.progress import CountdownColumn, RichProgress


def spec(seed: int) -> Run:
    return Run(RunSpec("toy", {}, "erm", {}, seed, TrainConfig(epochs=2)))


def test_counts_and_the_sweeps_epochs_finished_and_in_flight():
    console = Console(file=io.StringIO(), width=200)
    view = RichProgress(console)
    ok = {"status": "ok", "test": {"wga": 50.0, "acc": 60.0}, "wall_time_s": 1.0}
    view(SweepBegun(4, 2, (spec(1), spec(2), spec(3))))  # seed 0 finished before; 3 runs of 2 epochs to train
    epochs = view.bars.tasks[view.sweep]
    assert epochs.total == 6 and epochs.completed == 0
    view(RunFinished(spec(0), ok, skipped=True))
    assert view.summary() == "runs: 1 done, 0 running, 0 failed" and epochs.completed == 0
    view(RunStarted(spec(1)))
    view(RunStarted(spec(2)))
    assert view.summary() == "runs: 1 done, 2 running, 0 failed"
    view(Evaluated(spec(1), {"epoch": 1, "stage": "identify", "val": {"wga": 40.0}, "train_loss": 0.5}))
    assert epochs.completed == 1, "an in-flight epoch counts"
    view(Evaluated(spec(1), {"epoch": 2, "stage": "upweighted", "val": {"wga": None}, "train_loss": 0.25}))
    view(RunFinished(spec(1), ok))
    view(RunFinished(spec(2), {"status": "failed", "error": "boom"}))  # died before its first epoch
    assert epochs.completed == 4, "a failed run's epochs are no longer to come"
    view(RunFinished(spec(3), ok, skipped=True))  # trained by another sweep
    assert epochs.completed == 6
    assert view.summary() == "runs: 3 done, 0 running, 1 failed"
    printed = console.file.getvalue()
    assert "erm seed 1 epoch 1/2 (identify, val wga 40.0, train loss 0.5000)" in printed, "one line per evaluation"
    assert "erm seed 1 epoch 2/2 (upweighted, train loss 0.2500)" in printed
    assert (
        "done     erm seed 0" in printed and "finished erm seed 1" in printed and "failed  erm seed 2: boom" in printed
    )


def test_the_remaining_time_counts_down_between_epochs():
    clock = [0.0]
    bars = RichBars(get_time=lambda: clock[0])
    task_id = bars.add_task("epochs", total=10)
    for t in (0.0, 10.0):  # 1 epoch per 10 s: 8 epochs left, 80 s
        clock[0] = t
        bars.update(task_id, advance=1)
    task = bars.tasks[task_id]
    column = CountdownColumn()
    assert column.render(task).plain == "0:01:20 left"
    clock[0] = 40.0  # no epoch for 30 s: rich's own estimate still says 80 s
    assert TimeRemainingColumn().render(task).plain == "0:01:20"
    assert column.render(task).plain == "0:00:50 left"
    clock[0] = 500.0
    assert column.render(task).plain == "0:00:00 left"


def test_a_run_whose_method_was_not_applicable_prints_why_and_no_number():
    console = Console(file=io.StringIO(), width=200)
    view = RichProgress(console)
    view(SweepBegun(1, 1, (spec(0),)))
    view(RunStarted(spec(0)))
    result = {"status": "ok", "test": {"wga": 50.0, "acc": 60.0}, "wall_time_s": 1.0, "not_applicable": "no premise"}
    view(RunFinished(spec(0), result))
    printed = console.file.getvalue()
    assert "finished erm seed 0: not applicable (no premise) in 1.0s" in printed and "50.0" not in printed
