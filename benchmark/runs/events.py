"""One event protocol for everything that follows a sweep: its live view, each run's logs, the recorder, and the
queue from a process pool's workers back to the sweep.

An event is one of a few small frozen records (:class:`SweepBegun`, :class:`RunStarted`, :class:`Evaluated`,
:class:`RunFinished`, :class:`Note`); a listener is any callable that takes one (:data:`Listener`). Events pickle,
so a worker process forwards them as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Union

if TYPE_CHECKING:  # annotations only
    from benchmark.runs.spec import Run


@dataclass(frozen=True)
class SweepBegun:
    """The sweep has ``total`` runs (finished ones included), of which ``pending`` are still to train (here or by
    another sweep on the folder), up to ``parallel`` at a time."""

    total: int
    parallel: int
    pending: tuple[Run, ...] = ()


@dataclass(frozen=True)
class RunStarted:
    """``run`` was handed to where it trains."""

    run: Run


@dataclass(frozen=True)
class Evaluated:
    """``run`` was evaluated after an epoch: ``record`` holds the stage, epoch, step, train loss, method logs, val
    and test metrics and times (:class:`~benchmark.training.run_training.RunTraining`)."""

    run: Run
    record: dict


@dataclass(frozen=True)
class RunFinished:
    """``run`` has its ``result`` (finished, failed or not stored); ``skipped`` when it was stored before (by an
    earlier sweep, or another sweep on the same folder) rather than trained here."""

    run: Run
    result: dict
    skipped: bool = False


@dataclass(frozen=True)
class Note:
    """A message about the sweep as a whole (e.g. waiting for another sweep's runs)."""

    text: str


Event = Union[SweepBegun, RunStarted, Evaluated, RunFinished, Note]
Listener = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The listener that does nothing."""


class Handlers:
    """A listener with one method per kind of event it follows (:meth:`begun`, :meth:`started`, :meth:`evaluated`,
    :meth:`finished`, :meth:`note`; each takes the event); the others do nothing."""

    def __call__(self, event: Event) -> None:
        getattr(self, HANDLERS[type(event)])(event)

    def begun(self, event: SweepBegun) -> None: ...

    def started(self, event: RunStarted) -> None: ...

    def evaluated(self, event: Evaluated) -> None: ...

    def finished(self, event: RunFinished) -> None: ...

    def note(self, event: Note) -> None: ...


HANDLERS = {SweepBegun: "begun", RunStarted: "started", Evaluated: "evaluated", RunFinished: "finished", Note: "note"}
