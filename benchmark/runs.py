"""A planned run: what identifies it (:class:`~benchmark.config.RunSpec`), how it executes
(:class:`~benchmark.config.Execution`), and how it is stored and reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from benchmark.config import Execution, RunSpec
from benchmark.store import SCHEMA_VERSION, run_dir

LOGGERS = ("tensorboard",)  # --log choices: TensorBoard event files in <run folder>/tensorboard


@dataclass(frozen=True)
class Run:
    """One run of a sweep.

    ``trial`` is the hparam-search trial that drew the spec's hparams (0: the defaults); ``family_id`` is the
    ``config_id`` of trial 0 of the same sweep, which ties the trials of a method together for selection.
    ``select`` is the rule for the run's own result (reports can re-select from the stored history).
    ``save_model``: keep the state dict of the model at the selected epoch beside the result (``model.pt``).
    ``log``: extra loggers of every evaluation besides ``log.jsonl`` (:data:`LOGGERS`).
    """

    spec: RunSpec
    execution: Execution = field(default_factory=Execution)
    select: str = "val-wga"
    trial: int = 0
    family_id: str = ""
    save_model: bool = False
    log: tuple[str, ...] = ()

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def family(self) -> str:
        return self.family_id or self.spec.config_id

    def header(self) -> dict:
        """What every file of the run starts with: ids, trial and identity."""
        spec = self.spec
        ids = {"run_id": spec.run_id, "config_id": spec.config_id, "family_id": self.family, "trial": self.trial}
        return {"schema": SCHEMA_VERSION, **ids, **spec.identity()}

    def directory(self, out: Path) -> Path:
        return run_dir(out, self.spec.dataset, self.spec.method, self.spec.run_id)
