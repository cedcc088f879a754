"""``--log tensorboard``: every evaluation's loss and metrics as TensorBoard scalars, in ``<run folder>/tensorboard``
(the ``tensorboard`` extra; SubpopBench logs this way)."""

from __future__ import annotations

from pathlib import Path

from benchmark.core.errors import require
from benchmark.runs.events import Evaluated, Handlers


def check_tensorboard() -> None:
    """A BenchError before any training when the tensorboard package is missing."""
    require("tensorboard", "--log tensorboard", "tensorboard")


class TensorBoardLog(Handlers):
    """A listener of the run's events that writes each evaluation record at its optimizer step: ``train/loss``,
    ``{val,test}/{wga,acc}``, each group's val and test accuracy (``val_group/<name>``) and the method's scalar logs
    (``logs/<name>``)."""

    def __init__(self, folder: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder))

    def evaluated(self, event: Evaluated) -> None:
        record = event.record
        step, add = record["step"], self.writer.add_scalar
        add("train/loss", record["train_loss"], step)
        for split in ("val", "test"):
            for metric in ("wga", "acc"):
                if record[split].get(metric) is not None:
                    add(f"{split}/{metric}", record[split][metric], step)
            for group, accuracy in record[split]["groups"].items():
                if accuracy is not None:
                    add(f"{split}_group/{group}", accuracy, step)
        for name, value in record["logs"].items():
            if isinstance(value, (int, float)):
                add(f"logs/{name}", value, step)

    def close(self) -> None:
        self.writer.close()
