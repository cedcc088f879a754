"""Live sweep progress on the console with rich: runs done / running / failed, elapsed and estimated remaining
time, and one bar per run in flight. Each finished run prints one line with its test wga and acc."""

from __future__ import annotations

from time import perf_counter

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars

from benchmark.runner import Progress
from benchmark.runs import Run


def format_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class RichProgress(Progress):
    """The live view of a sweep of ``total_runs`` runs, ``parallel`` of them at a time.

    The remaining-time estimate is the mean wall time of the runs trained so far in this sweep times the runs
    left, divided by ``parallel``.
    """

    def __init__(self, console: Console, total_runs: int = 0, parallel: int = 1):
        self.console = console
        self.parallel = max(1, parallel)
        self.bars = RichBars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.total = total_runs
        self.sweep = self.bars.add_task("runs", total=total_runs)
        self.running: dict[str, tuple[int, float]] = {}  # run id -> (bar, start time)
        self.done = self.failed = 0
        self.trained_seconds: list[float] = []

    def begin(self, total: int, parallel: int) -> None:
        self.total, self.parallel = total, max(1, parallel)
        self.bars.update(self.sweep, total=total, description=self.summary())

    def __enter__(self) -> "RichProgress":
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def summary(self) -> str:
        """``runs: 3 done, 2 running, 1 failed, ~0:04:10 left``."""
        text = f"runs: {self.done} done, {len(self.running)} running, {self.failed} failed"
        if self.trained_seconds:
            left = self.total - self.done - self.failed
            mean = sum(self.trained_seconds) / len(self.trained_seconds)
            text += f", ~{format_seconds(mean * left / self.parallel)} left"
        return text

    def start(self, run: Run) -> None:
        bar = self.bars.add_task(self.run_name(run), total=run.spec.train.epochs)
        self.running[run.run_id] = (bar, perf_counter())
        self.bars.update(self.sweep, description=self.summary())

    def evaluated(self, run: Run, record: dict) -> None:
        val = record["val"]["wga"]
        suffix = f" (val wga {val:.1f})" if val is not None else ""
        bar = self.running[run.run_id][0]
        self.bars.update(bar, completed=record["epoch"], description=self.run_name(run) + suffix)

    def finished(self, run: Run, result: dict, skipped: bool) -> None:
        if run.run_id in self.running:
            bar, started = self.running.pop(run.run_id)
            self.bars.remove_task(bar)
            self.trained_seconds.append(perf_counter() - started)
        ok = result.get("status") == "ok"
        self.done += ok
        self.failed += not ok
        self.bars.update(self.sweep, advance=1, description=self.summary())
        what = self.run_name(run)
        if not ok:
            self.console.print(f"[red]failed[/red]  {what}: {result.get('error')}")
            return
        test = result["test"]
        state = "done    " if skipped else "finished"
        extra = "" if skipped else f" in {result['wall_time_s']:.1f}s"
        self.console.print(f"{state} {what}: test wga {test['wga']:.1f}, acc {test['acc']:.1f}{extra}")

    def note(self, text: str) -> None:
        self.console.print(text)

    @staticmethod
    def run_name(run: Run) -> str:
        trial = f" trial {run.trial}" if run.trial else ""
        return f"{run.spec.method}{trial} seed {run.spec.seed}"
