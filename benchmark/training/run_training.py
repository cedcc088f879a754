"""One run's training between steps: its method, stages, batch stream, evaluations, clocks and records
(:class:`RunTraining`), which the engine (:mod:`benchmark.training.engine`) drives."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from benchmark.core.selection import selection_score
from benchmark.data.batches import Batch, BatchStream, eval_batches
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Stage
from benchmark.runs.spec import RunSpec
from benchmark.training.devices import peak_memory_mb, synchronize
from benchmark.training.evaluation import evaluate, prediction_metrics
from benchmark.training.setup import autocast, build_method, enter_stage, make_optimizer

BATCH_STREAM = 0xBA7C  # with the run's seed, the seed of its batch order


@dataclass(frozen=True)
class Selection:
    """How a run chooses among its evaluations: ``rule`` (:data:`~benchmark.core.selection.SELECT_RULES`) picks each
    stage's selected evaluation, recorded with the stage, and the state a stage that starts from the previous
    stage's selection (:attr:`~benchmark.methods.base.Stage.from_selected`) starts from; ``keep_model`` keeps the
    final stage's selected state for the result (``state_dict``)."""

    rule: str = "val-wga"
    keep_model: bool = False


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite; the run stops and is recorded as failed."""


class RunTraining:
    """One run's training between steps: its method, stages, batch stream, evaluations, clocks and records.

    The :class:`Engine` drives it. Per stage: :meth:`begin_stage`; per epoch: :meth:`begin_epoch` (the epoch's
    batches), the steps, then :meth:`end_epoch` (evaluation, records, the stage's end); finally :meth:`result`.
    """

    def __init__(self, spec: RunSpec, data: GroupDataset, on_eval: Callable, selection: Selection = Selection(),
                 count_flops: bool = False, start: float | None = None):  # fmt: skip
        self.spec, self.data, self.on_eval, self.selection = spec, data, on_eval, selection
        self.count_flops = count_flops
        self.start = time.perf_counter() if start is None else start  # the run's clock (time_s, wall_time_s)
        self.method = build_method(spec, data)
        self.batch_rng = np.random.default_rng([spec.seed, BATCH_STREAM])
        self.evals = {split: eval_batches(data, split, spec.train.eval_batch_size) for split in ("val", "test")}
        self.steps_per_epoch = self.method.info.steps_per_epoch
        self.stages = self.method.stages()
        self.stage_number, self.epochs_left, self.step, self.epoch = 0, 0, 0, 0
        self.train_time, self.train_cpu, self.history, self.curve, self.stage_reports = 0.0, 0.0, [], [], []
        self.kept, self.best, self.selected_epoch = None, None, None  # the current stage's selected evaluation

    @property
    def stage(self) -> Stage:
        return self.stages[self.stage_number - 1]

    def begin_stage(self) -> torch.optim.Optimizer:
        """Enter the next stage (:func:`~benchmark.training.setup.enter_stage`, timed as its setup); returns its
        optimiser over the parameters that require gradients."""
        self.stage_number += 1
        self.stage_start, self.stage_train_time = time.perf_counter(), 0.0
        starts_from = {}
        if self.stage.from_selected and self.kept is not None:
            self.method.load_state_dict(self.kept)
            starts_from = {"starts_from_epoch": self.selected_epoch}
        self.best, self.selected_epoch = None, None
        self.facts, self.sampler = enter_stage(self.method, self.stage, self.data, self.spec)
        self.facts = {**starts_from, **self.facts}
        optimizer = make_optimizer(self.spec.train, [p for p in self.method.parameters() if p.requires_grad])
        synchronize(self.data.device)
        self.setup_time = time.perf_counter() - self.stage_start
        self.stream = BatchStream(self.sampler, self.batch_rng)
        self.flops = [] if self.count_flops else None  # of the stage's first step
        self.epochs_left = self.stage.epochs
        return optimizer

    def begin_epoch(self) -> list[Batch]:
        """Start the next epoch (training mode, the method's epoch hook) and draw its batches."""
        self.epoch += 1
        self.method.train()
        self.method.on_epoch_start(self.epoch, self.data)
        return self.stream.take(self.steps_per_epoch)

    def end_epoch(self, loss_sum: torch.Tensor, first_bad: torch.Tensor, logs: dict, train_s: float, cpu_s: float):
        """After the epoch's steps (their summed loss, first non-finite step or -1, last logs, wall and CPU time):
        raise :class:`NonFiniteLoss`, or evaluate, record, keep, and close the stage at its last epoch."""
        steps = self.steps_per_epoch
        self.step += steps
        self.stage_train_time += train_s
        self.train_cpu += cpu_s
        if first_bad.item() >= 0:
            stage = self.stage.name
            raise NonFiniteLoss(f"non-finite loss at step {first_bad.item()} (epoch {self.epoch}, stage {stage})")
        metrics = self.evaluations()
        record = {
            "stage": self.stage.name,
            "epoch": self.epoch,
            "step": self.step,
            "train_loss": loss_sum.item() / steps,
            "logs": {k: v.detach().cpu().tolist() for k, v in logs.items()},
            "live_units": metrics["val"].pop("live_units"),
            **metrics,
            "time_s": time.perf_counter() - self.start,
            "train_s": train_s,
        }
        self.record(record)
        self.epochs_left -= 1
        if self.epochs_left == 0:
            self.end_stage()
            if self.stage_number == len(self.stages):
                self.refit(record)

    def evaluations(self) -> dict:
        """The method's metrics on the val and test batches (val also with the latents' live units)."""
        with autocast(self.spec.train, self.data.device):
            evals = self.evals.items()
            return {split: evaluate(self.method, self.data, batches, split == "val") for split, batches in evals}

    def record(self, record: dict) -> None:
        """An evaluation: to the callback, the curve, the final stage's history, and the stage's selection."""
        self.on_eval(record)
        self.curve.append({"stage": record["stage"], "epoch": self.epoch, "val_wga": record["val"]["wga"]})
        if self.stage_number == len(self.stages):
            self.history.append({key: record[key] for key in ("epoch", "val", "test", "live_units")})
        self.select(record)

    def refit(self, last: dict) -> None:
        """After the last stage, the method's refit (:meth:`~benchmark.methods.base.Method.refit`, e.g. DFR's head on
        held-out data), if it has one: the refit model is evaluated, with the val metrics of the samples the method
        held out of the refit (``val_all``: the whole val split, which the refit saw), and that evaluation replaces
        the run's history; the refit's time and facts are recorded as a stage of no steps."""
        start = time.perf_counter()
        refit = self.method.refit(self.data)
        if refit is None:
            return
        metrics = self.evaluations()
        held_out = prediction_metrics(self.data, refit.held_out, refit.predicted)
        self.history, self.best = [], None
        self.record({**last, "stage": "refit", "logs": {}, "live_units": metrics["val"].pop("live_units"),
                     "val": held_out, "val_all": metrics["val"], "test": metrics["test"],
                     "time_s": time.perf_counter() - self.start, "train_s": 0.0})  # fmt: skip
        wall = time.perf_counter() - start
        self.stage_reports.append({"name": "refit", "epochs": 0, "steps": 0, "selected_epoch": self.epoch,
                                   "wall_time_s": wall, **refit.facts})  # fmt: skip

    def select(self, record: dict) -> None:
        """Make ``record`` the stage's selected evaluation if it beats every earlier one of the stage under the rule
        (the first of equal scores stays, as :func:`~benchmark.core.selection.select_epoch` picks), keeping the
        method's state where a later stage or the result needs it."""
        score = selection_score(record, self.selection.rule)
        if self.best is not None and score <= self.best:
            return
        self.best, self.selected_epoch = score, record["epoch"]
        final = self.stage_number == len(self.stages)
        needed = self.selection.keep_model if final else self.stages[self.stage_number].from_selected
        if needed:
            self.kept = {name: value.detach().cpu().clone() for name, value in self.method.state_dict().items()}

    def end_stage(self) -> None:
        stage = self.stage
        self.train_time += self.stage_train_time
        self.stage_reports.append(
            {
                "name": stage.name,
                "epochs": stage.epochs,
                "steps": stage.epochs * self.steps_per_epoch,
                "sampler": self.sampler.name,
                "selected_epoch": self.selected_epoch,
                "setup_time_s": self.setup_time,
                **({"step_flops": self.flops[0]} if self.flops else {}),
                "train_time_s": self.stage_train_time,
                "wall_time_s": time.perf_counter() - self.stage_start,
                **self.facts,
            }
        )

    def result(self) -> dict:
        """The run's history and costs (see :func:`train`)."""
        device, names = self.data.device, self.data.group_names
        memory, memory_kind = peak_memory_mb(device)
        return {
            "group_sizes": {split: dict(zip(names, n)) for split, n in self.data.counts_table().items()},
            "epochs": self.spec.train.epochs,
            "steps": self.step,
            "stages": self.stage_reports,
            "train_time_s": self.train_time,
            "train_cpu_s": self.train_cpu,
            "wall_time_s": time.perf_counter() - self.start,
            "steps_per_s": self.step / self.train_time if self.train_time > 0 else None,
            "peak_memory_mb": memory,
            "memory_kind": memory_kind,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "labels": self.method.labels_read(),
            "not_applicable": self.method.not_applicable(self.data, self.history[-1]),
            "history": self.history,
            "curve": self.curve,
            **({"state_dict": self.kept} if self.selection.keep_model else {}),
        }
