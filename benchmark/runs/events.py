"""What a sweep reports while it runs: the callbacks of :class:`Progress`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only
    from benchmark.runs.spec import Run


class Progress:
    """Callbacks a sweep reports to; the base class is silent."""

    def begin(self, total: int, parallel: int, pending: list[Run] = ()) -> None:
        """The sweep has ``total`` runs (finished ones included), of which ``pending`` are still to train (here
        or by another sweep on the folder), up to ``parallel`` at a time."""

    def start(self, run: Run) -> None: ...

    def evaluated(self, run: Run, record: dict) -> None: ...

    def finished(self, run: Run, result: dict, skipped: bool) -> None: ...

    def note(self, text: str) -> None:
        """A message about the sweep as a whole (e.g. waiting for another sweep's runs)."""
