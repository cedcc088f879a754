"""Live sweep progress on the console with rich: runs done / running / failed, the sweep's epochs with rich's
elapsed and remaining-time columns, and one bar per run in flight. Each finished run prints one line with its
test wga and acc."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichBars
from rich.text import Text

from benchmark.runs.events import Evaluated, Handlers, Note, RunFinished, RunStarted, SweepBegun
from benchmark.runs.spec import Run


class CountdownColumn(TimeRemainingColumn):
    """rich's remaining-time column, counting down between updates: its estimate (remaining epochs over the recent
    epoch rate) at the last progress, less the time since (rich's own estimate stands still until the next)."""

    def render(self, task: Task) -> Text:
        estimate = task.time_remaining
        if estimate is None or task.finished or not task._progress:  # the last progress sample: rich's own deque
            return super().render(task)
        left = max(0, int(estimate - (task.get_time() - task._progress[-1].timestamp)))
        return Text(f"{left // 3600:d}:{left // 60 % 60:02d}:{left % 60:02d} left", style="progress.remaining")


class RichProgress(Handlers):
    """The live view of a sweep, a listener of its events: a line of run counts over a bar of the epochs still to train
    when it began (finished and in-flight epochs alike), whose remaining time is rich's estimate from the recent epoch
    rate, counting down between epochs (:class:`CountdownColumn`),
    and a bar per run in flight naming its stage. Without a terminal (a log file, a SLURM log) the live view
    does not draw, so every evaluation prints one plain line.
    """

    def __init__(self, console: Console):
        self.console = console
        self.bars = RichBars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epochs"),
            TimeElapsedColumn(),
            CountdownColumn(),
            console=console,
            transient=True,
        )
        self.sweep = self.bars.add_task("runs", total=None)
        self.running: dict[str, int] = {}  # run id -> its bar
        self.epochs_left: dict[str, int] = {}  # run id of a run to train -> its epochs not yet counted
        self.done = self.failed = 0

    def begun(self, event: SweepBegun) -> None:
        self.epochs_left = {run.run_id: run.spec.train.epochs for run in event.pending}
        trained = next(task.completed for task in self.bars.tasks if task.id == self.sweep)  # by an earlier phase
        self.bars.update(self.sweep, total=trained + sum(self.epochs_left.values()), description=self.summary())

    def __enter__(self) -> "RichProgress":
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def summary(self) -> str:
        """``runs: 3 done, 2 running, 1 failed``."""
        return f"runs: {self.done} done, {len(self.running)} running, {self.failed} failed"

    def count_epochs(self, run: Run, left: int) -> None:
        """Advance the sweep's bar to ``left`` epochs of ``run`` not yet trained."""
        if run.run_id in self.epochs_left:
            self.bars.update(self.sweep, advance=self.epochs_left[run.run_id] - left)
            self.epochs_left[run.run_id] = left

    def started(self, event: RunStarted) -> None:
        run = event.run
        self.running[run.run_id] = self.bars.add_task(self.run_name(run), total=run.spec.train.epochs)
        self.bars.update(self.sweep, description=self.summary())

    def evaluated(self, event: Evaluated) -> None:
        run, record = event.run, event.record
        val = record["val"]["wga"]
        state = f"{record['stage']}, val wga {val:.1f}" if val is not None else record["stage"]
        bar = self.running[run.run_id]
        self.bars.update(bar, completed=record["epoch"], description=f"{self.run_name(run)} ({state})")
        self.count_epochs(run, run.spec.train.epochs - record["epoch"])
        if not self.console.is_terminal:  # a log file or a batch job's output: no live view, one line instead
            epochs = f"epoch {record['epoch']}/{run.spec.train.epochs}"
            self.console.print(f"{self.run_name(run)} {epochs} ({state}, train loss {record['train_loss']:.4f})")

    def finished(self, event: RunFinished) -> None:
        run, result, skipped = event.run, event.result, event.skipped
        if run.run_id in self.running:
            self.bars.remove_task(self.running.pop(run.run_id))
        self.count_epochs(run, 0)  # a failed run's unfinished epochs, or a run another sweep trained
        ok = result.get("status") == "ok"
        self.done += ok
        self.failed += not ok
        self.bars.update(self.sweep, description=self.summary())
        what = self.run_name(run)
        if not ok:
            self.console.print(f"[red]failed[/red]  {what}: {result.get('error')}")
            return
        test = result["test"]
        state = "done    " if skipped else "finished"
        extra = "" if skipped else f" in {result['wall_time_s']:.1f}s"
        if result.get("not_applicable"):  # its numbers measure something else: the reason instead
            self.console.print(f"{state} {what}: not applicable ({result['not_applicable']}){extra}")
            return
        self.console.print(f"{state} {what}: test wga {test['wga']:.1f}, acc {test['acc']:.1f}{extra}")

    def note(self, event: Note) -> None:
        self.console.print(event.text)

    @staticmethod
    def run_name(run: Run) -> str:
        trial = f" trial {run.trial}" if run.trial else ""
        return f"{run.spec.method}{trial} seed {run.spec.seed}"
