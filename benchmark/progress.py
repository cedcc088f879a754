"""Live sweep progress on the console with rich: one bar for the sweep, one for the run in flight."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBars

from benchmark.config import RunSpec
from benchmark.runner import Progress


class RichProgress(Progress):
    """Sweep progress bars; a finished run prints one line with its test wga and acc."""

    def __init__(self, console: Console, total_runs: int):
        self.console = console
        self.bars = RichBars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.sweep = self.bars.add_task("runs", total=total_runs)
        self.current = None

    def __enter__(self) -> "RichProgress":
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def start(self, spec: RunSpec) -> None:
        self.current = self.bars.add_task(f"{spec.method} seed {spec.seed}", total=spec.train.epochs)

    def evaluated(self, spec: RunSpec, record: dict) -> None:
        val = record["val"]["wga"]
        self.bars.update(
            self.current,
            completed=record["epoch"],
            description=f"{spec.method} seed {spec.seed} (val wga {val:.1f})" if val is not None else None,
        )

    def finished(self, spec: RunSpec, result: dict, skipped: bool) -> None:
        if self.current is not None:
            self.bars.remove_task(self.current)
            self.current = None
        self.bars.advance(self.sweep)
        what = f"{spec.method} seed {spec.seed}"
        if result.get("status") != "ok":
            self.console.print(f"[red]failed[/red]  {what}: {result.get('error')}")
            return
        test = result["test"]
        state = "done    " if skipped else "finished"
        extra = "" if skipped else f" in {result['wall_time_s']:.1f}s"
        self.console.print(f"{state} {what}: test wga {test['wga']:.1f}, acc {test['acc']:.1f}{extra}")
