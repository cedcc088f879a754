"""The one training engine: every run's stages, epochs, steps, evaluations and records, whether it trains alone or
in lockstep with others as one stacked model.

A run between steps is a :class:`~benchmark.training.run_training.RunTraining` (its method, stages, batch stream,
evaluations, clocks and records). The :class:`Engine` drives its runs epoch by epoch through one loop: enter a stage
where one begins, draw the epoch's batches, take the steps, evaluate on val and test, record, keep the model, close
the stage. Only the steps are a strategy: :class:`AloneSteps` (a run's loss, backward and optimiser step per batch,
:func:`train_steps`) or :class:`~benchmark.training.stacking.StackedSteps` (many runs' steps as one stacked model).
The engine knows nothing of specific methods (only the :class:`~benchmark.methods.base.Method` hooks) and nothing of
files: evaluation records go to each run's callback and each run ends with one ``on_done(index, outcome)``.
"""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.data.batches import Batch
from benchmark.data.core import GroupDataset
from benchmark.data.images import prefetched
from benchmark.methods.base import Method
from benchmark.runs.spec import Execution, RunSpec, TrainConfig
from benchmark.training.devices import resolve_device, synchronize
from benchmark.training.execution import RunSettings, run_settings
from benchmark.training.run_training import RunTraining, Selection
from benchmark.training.setup import autocast


def train_steps(
    method: Method,
    data: GroupDataset,
    optimizer,
    batches: list[Batch],
    config: TrainConfig,
    first_step: int,
    flops: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """One optimiser step per batch, without host syncs: the summed loss, the first step (numbered from
    ``first_step`` + 1) whose loss was not finite (-1 if none), and the last step's logs. Given a ``flops`` list,
    the first step runs under :class:`~torch.utils.flop_counter.FlopCounterMode` (which only observes) and its
    FLOPs (matrix products and convolutions, forward and backward) are appended."""
    device = data.device
    loss_sum = torch.zeros((), device=device)
    first_bad = torch.full((), -1, device=device)
    logs: dict[str, torch.Tensor] = {}
    for step, batch in enumerate(prefetched(data, batches), first_step + 1):
        counting = flops is not None and step == first_step + 1
        with FlopCounterMode(display=False) if counting else contextlib.nullcontext() as counter:
            with autocast(config, device):
                loss, logs = method.loss(data, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if counting:
            flops.append(counter.get_total_flops())
        method.after_step(batch, logs)
        loss = loss.detach()
        loss_sum += loss
        first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss), step, first_bad)
    return loss_sum, first_bad, logs


class EpochOutcome:
    """Per row over an epoch's steps: (summed loss, first non-finite step or -1, last logs), or the error that
    stopped the row's steps (raised when its epoch ends, so the other rows go on)."""

    def __init__(self):
        self.steps: dict[int, tuple] = {}
        self.errors: dict[int, BaseException] = {}

    def end_epoch(self, row: int, run: RunTraining, times: tuple[float, float]) -> None:
        """Close the epoch of ``row``'s run with the steps' wall and CPU time, or raise the error of its steps."""
        if row in self.errors:
            raise self.errors[row]
        run.end_epoch(*self.steps[row], *times)


class AloneSteps:
    """The steps of runs that each train alone: :func:`train_steps` per row, with the row's optimiser."""

    def start(self, engine: Engine) -> None:
        """Nothing to share between the rows."""

    def stage_started(self, engine: Engine, row: int, run: RunTraining) -> None:
        """Nothing to adopt: the run's modules are its own."""

    def epoch(self, engine: Engine, batches: dict[int, list[Batch]]) -> EpochOutcome:
        outcome = EpochOutcome()
        for row, run in engine.active_runs():
            try:
                optimizer, config = engine.optimizers[row], run.spec.train
                steps = train_steps(run.method, run.data, optimizer, batches[row], config, run.step, run.flops)
                outcome.steps[row] = steps
            except Exception as exc:  # noqa: BLE001 - the run fails at the epoch's end
                outcome.errors[row] = exc
        return outcome

    def evaluation(self, engine: Engine) -> Callable[[int, RunTraining], contextlib.AbstractContextManager]:
        """Each run evaluates through its own model."""
        return lambda row, run: contextlib.nullcontext()


class Engine:
    """Trains ``runs`` (index -> :class:`RunTraining`; its row is its position) epoch by epoch with ``steps``
    taking each epoch's steps. A run whose set-up, steps or evaluation raises is done at once (``on_done(index,
    exception)``) and the others go on; the rest end together, each result completed with how many runs trained
    together and what the run ``settings`` say about determinism."""

    def __init__(self, runs: dict[int, RunTraining], steps, on_done: Callable, settings: RunSettings):
        self.runs, self.steps, self.on_done, self.settings = runs, steps, on_done, settings
        self.rows = list(runs)  # row -> run index
        self.active = dict(enumerate(self.rows))  # rows still training -> run index
        self.optimizers: dict[int, torch.optim.Optimizer] = {}  # row -> its run's optimiser of the current stage
        self.first = next(iter(runs.values()))
        steps.start(self)

    def active_runs(self) -> list[tuple[int, RunTraining]]:
        """(row, run) of every run still training."""
        return [(row, self.runs[i]) for row, i in self.active.items()]

    def guarded(self, action: Callable[[int, RunTraining], object]) -> dict[int, object]:
        """``action(row, run)`` for every active row; a row whose action raises is done with that error. Returns
        the values by row."""
        values = {}
        for row, run in self.active_runs():
            try:
                values[row] = action(row, run)
            except Exception as exc:  # noqa: BLE001 - this run fails, the others go on
                self.optimizers.pop(row, None)
                self.on_done(self.active.pop(row), exc)
        return values

    def begin_stage(self, row: int, run: RunTraining) -> None:
        """A run entering its next stage: the stage hook, a fresh model if asked, its new optimiser."""
        self.optimizers[row] = run.begin_stage()
        self.steps.stage_started(self, row, run)

    def train(self) -> None:
        for _ in range(self.first.spec.train.epochs):
            self.guarded(lambda row, run: self.begin_stage(row, run) if run.epochs_left == 0 else None)
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            batches = self.guarded(lambda row, run: run.begin_epoch())
            if not self.active:
                return
            outcome = self.steps.epoch(self, batches)
            synchronize(self.first.data.device)
            times = time.perf_counter() - epoch_start, time.process_time() - epoch_cpu
            self.guarded(partial(self.end_epoch, outcome=outcome, times=times, evaluating=self.steps.evaluation(self)))
        for row, run in self.active_runs():
            result = {**run.result(), "stacked_runs": len(self.rows), **self.settings.determinism()}
            self.on_done(self.active[row], result)

    @staticmethod
    def end_epoch(row: int, run: RunTraining, outcome: EpochOutcome, times: tuple, evaluating: Callable) -> None:
        """Close ``run``'s epoch (its evaluation in the strategy's context) with the epoch's ``outcome``."""
        with evaluating(row, run):
            outcome.end_epoch(row, run, times)


def run_engine(specs: list[RunSpec], data_cpu: GroupDataset, on_evals: list, on_done: Callable, steps, settings,
               device: torch.device, selections: list[Selection], count_flops: bool = False) -> None:  # fmt: skip
    """Set each run up on ``device`` (a run whose set-up fails is done at once with its error) and train the others
    with one :class:`Engine` whose ``steps`` strategy takes their steps."""
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    data = data_cpu.to(device)
    runs = {}
    for i, spec in enumerate(specs):
        try:
            runs[i] = RunTraining(spec, data, on_evals[i], selections[i], count_flops, start)
        except Exception as exc:  # noqa: BLE001 - this run fails, the others go on
            on_done(i, exc)
    if runs:
        Engine(runs, steps, on_done, settings).train()


def train(
    spec: RunSpec,
    data_cpu: GroupDataset,
    on_eval: Callable[[dict], None] = lambda record: None,
    execution: Execution = Execution(),
    selection: Selection = Selection(),
) -> dict:
    """Train ``spec.method`` alone on ``data_cpu`` as ``execution`` says (device; CPU threads and deterministic
    algorithms, set for the run and restored after) and return its history and costs.

    Of ``spec`` the engine reads the method, hparams, seed and training settings; the dataset fields are the
    caller's. The budget is in optimizer steps: each stage trains ``stage.epochs × ⌈n_train / batch_size⌉`` steps
    (ERM's epochs), drawn as one stream from its sampler (:class:`~benchmark.data.batches.BatchStream`), whatever
    the sampler's cycle. The method's stages run in order, each with a new optimiser over the parameters that
    require gradients. After each ⌈n_train / batch_size⌉ steps (an "epoch") the model is evaluated on val and test
    (val also records the latents' ``live_units`` per group); the record (stage, epoch, step, train loss, method
    logs, metrics, time since the start and the epoch's training time ``train_s``: its hook, batch drawing and
    steps, without evaluation) goes to ``on_eval``. Each stage reports its ``setup_time_s`` (the stage hook, a fresh
    model, the optimiser and sampler) apart from its ``train_time_s``; ``train_cpu_s`` is the process's CPU time in
    training steps. The final stage's evaluations (the model the method delivers) are returned as ``history``, from
    which the recorder picks the reported epoch (:func:`~benchmark.core.selection.selected`); ``curve`` has every
    stage's val WGA per evaluation. ``selection`` (:class:`~benchmark.training.run_training.Selection`) picks each
    stage's evaluation by the run's rule (recorded with the stage as ``selected_epoch``; a stage that asks starts
    from it), and with ``keep_model`` returns the final stage's selected state (on CPU) as ``state_dict``.
    ``stacked_runs`` is 1.
    Raises what stopped the run, e.g. :class:`~benchmark.training.run_training.NonFiniteLoss` if the loss turns NaN/inf.
    """
    outcome: dict[int, dict | BaseException] = {}
    with run_settings(execution) as settings:
        device = resolve_device(execution.device)
        run_engine([spec], data_cpu, [on_eval], outcome.__setitem__, AloneSteps(), settings, device, [selection],
                   execution.count_flops)  # fmt: skip
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]
