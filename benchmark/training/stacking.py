"""Many runs trained together in one process as one stacked model.

One small run per process cannot keep a GPU busy: a step of these models is about a hundred kernel launches for a
few MFLOP, so the device waits on the host. Runs that share the dataset and the training budget (seeds, trials,
even methods) train here in lockstep, epoch by epoch:

- their models' parameters are the rows of one flat leaf tensor (runs × parameters); each run's modules alias
  their row, so evaluation and the methods' hooks read and write the stacked values
  (:class:`~benchmark.training.stacked_model.StackedParameters`);
- each feature space's encoder runs once per step for every run (``torch.func.vmap`` over the rows), on each
  run's samples of that space padded to the epoch's largest count; at each evaluation the val and test batches,
  the same for every run, are encoded once for all runs the same way;
- each method's loss still runs once per run, on its own batch, with the model's parameters swapped for its rows
  and the latents the stack computed supplied to its ``encode``, so methods need no change (a loss that encodes
  anything else runs its encoders on the rows too);
- each run keeps its own optimiser (the one it would have alone, over its parameters that require gradients,
  which alias its row), fed with its row of the stacked gradient; a parameter whose gradient the run alone would
  not have (the encoder of a feature space absent from its batch) gets none, so ``torch.optim`` skips it as it
  would alone.

This is a strategy of the one engine (:class:`StackedSteps` for
:class:`~benchmark.training.engine.Engine`): every run keeps its sampler stream, batch generator, stages,
evaluations, selection and result (:class:`~benchmark.training.engine.RunTraining`). The numbers are a run's alone up
to floating-point reassociation: the stacked kernels (grouped convolutions, batched products, padded batches) sum in
other orders than a run's own.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from benchmark.core.registry import METHODS
from benchmark.data.batches import Batch
from benchmark.data.core import GroupDataset
from benchmark.data.images import ImageFiles
from benchmark.runs.spec import Execution, RunSpec
from benchmark.training.devices import resolve_device
from benchmark.training.engine import AloneSteps, Engine, EpochOutcome, run_engine
from benchmark.training.execution import run_settings
from benchmark.training.run_training import RunTraining, Selection
from benchmark.training.setup import autocast
from benchmark.training.stacked_model import (
    EpochLayout,
    RowSwap,
    StackedEncoders,
    StackedParameters,
    supplied_latents,
)


def stack_problem(data: GroupDataset, specs: list[RunSpec]) -> str | None:
    """Why these runs cannot train stacked (None if they can): they must share the dataset and every training
    setting but the learning rate and weight decay, read in-memory feature spaces, run encoders without batch
    statistics or compilation, and use methods that allow it."""
    keys = {stack_key(spec) for spec in specs}
    if len(keys) > 1:
        return "the runs differ in dataset or training settings other than lr and weight decay"
    disk = [space.name for space in data.spaces if isinstance(space.x, ImageFiles)]
    if disk:
        return f"feature space {disk[0]} is read from disk"
    backbone = [space for space in data.spaces if space.encoder is not None]
    if backbone:  # torchvision ResNets: BatchNorm's statistics would mix the padding into the batch
        return f"feature space {backbone[0].name} uses the {backbone[0].encoder} backbone (batch statistics)"
    if specs[0].train.compile != "off":
        return "train.compile is set"
    unstackable = sorted({spec.method for spec in specs if not METHODS.get(spec.method).stackable})
    if unstackable:
        return f"method {unstackable[0]} trains one run at a time"
    return None


def stack_key(spec: RunSpec) -> tuple:
    """What runs must share to train stacked: the dataset, its options and files, and every training setting but
    the learning rate and weight decay (each run's own optimiser takes its own)."""
    train = {k: v for k, v in spec.train.to_dict().items() if k not in ("lr", "weight_decay")}
    return (spec.dataset, repr(sorted(spec.data_options.items())), spec.data_fingerprint, repr(sorted(train.items())))


class StackedSteps:
    """The steps of an :class:`~benchmark.training.engine.Engine`'s runs as one stacked model (the module
    docstring). A row whose loss raises fails at its epoch's end and stops updating its row; the others go on."""

    def start(self, engine: Engine) -> None:
        """The runs' models as the rows of one stack, with one vmapped encoder per feature space."""
        models = [run.method.model for run in engine.runs.values()]
        self.params = StackedParameters(models)
        self.encoders = StackedEncoders(models[0])
        self.swaps = {row: RowSwap(model) for row, model in enumerate(models)}

    def stage_started(self, engine: Engine, row: int, run: RunTraining) -> None:
        """The run's model (fresh at a stage that asks for one) adopted into its row."""
        self.swaps[row] = RowSwap(run.method.model)
        self.params.adopt(row, run.method.model)

    def epoch(self, engine: Engine, batches: dict[int, list[Batch]]) -> EpochOutcome:
        """One epoch of steps for the active rows, each on its ``batches``."""
        first, rows = engine.first, len(engine.rows)
        data, config, steps = first.data, first.spec.train, first.steps_per_epoch
        first_step = engine.runs[next(iter(engine.active.values()))].step
        layout = EpochLayout(data, [[(row, batches[row][t].parts()) for row in engine.active] for t in range(steps)],
                             rows)  # fmt: skip
        sums = StepSums(rows, data.device)
        training, logs = dict(engine.active), {}
        for t in range(steps):
            params = self.params.tensors()
            per_row = list(zip(*(p.unbind(0) for p in params.values())))  # each row's views, in parameter order
            with autocast(config, data.device):
                latents = iter(self.encoders(data, layout, t, params).split(layout.lengths[t]))
            supplied = {row: {id(part): next(latents) for part in batches[row][t].parts()} for row in engine.active}
            losses = {}
            for row in list(training):
                method = engine.runs[training[row]].method
                try:
                    with autocast(config, data.device):
                        loss, logs[row] = self.swaps[row](per_row[row], supplied[row], method.loss, data,
                                                          batches[row][t])  # fmt: skip
                    losses[row] = loss
                except Exception as exc:  # noqa: BLE001 - this run fails at the epoch's end, the others go on
                    sums.errors[row] = exc
                    del training[row]
            self.params.flat.grad.zero_()
            for row in training:
                engine.optimizers[row].zero_grad(set_to_none=True)
            if losses:
                stacked = torch.stack(list(losses.values()))
                stacked.sum().backward()
                for row in losses:
                    self.params.hand_gradients(row, engine.runs[training[row]].method.model, layout.present[t][row])
                    engine.optimizers[row].step()
                sums.add(tuple(losses), stacked.detach(), first_step + t + 1)
            for row in losses:
                engine.runs[training[row]].method.after_step(batches[row][t], logs[row])
        return sums.outcome(logs)

    @torch.no_grad()
    def evaluation(self, engine: Engine) -> Callable[[int, RunTraining], contextlib.AbstractContextManager]:
        """Every active run's latents of its val and test batches (the same batches for every run), computed for
        all runs at once; each run's evaluation reads its own through its model's ``encode``."""
        first, params = engine.first, self.params.tensors()
        encoded: dict[int, list[torch.Tensor]] = {}  # per position among the first run's eval batches
        with autocast(first.spec.train, first.data.device):
            for batch in (b for split in first.evals.values() for b in split):
                encoded[len(encoded)] = self.encoders.shared(first.data, batch, params)

        def supplied(row: int, run: RunTraining):
            batches = [b for split in run.evals.values() for b in split]
            return supplied_latents(run.method.model, {id(b): encoded[n][row] for n, b in enumerate(batches)})

        return supplied


class StepSums:
    """Per row over an epoch's stacked steps, on the device: the summed loss and the first step whose loss was not
    finite (-1: none); and the error that stopped a row's loss."""

    def __init__(self, num_rows: int, device):
        self.loss_sum = torch.zeros(num_rows, device=device)
        self.first_bad = torch.full((num_rows,), -1, device=device)
        self.errors: dict[int, BaseException] = {}
        self.indices: dict[tuple[int, ...], torch.Tensor] = {}

    def add(self, rows: tuple[int, ...], losses: torch.Tensor, step: int) -> None:
        """One step's detached ``losses`` of ``rows`` (no host sync: the rows' index tensor is copied to the device
        once, when the rows first come, not every step)."""
        if rows not in self.indices:
            self.indices[rows] = torch.tensor(rows, device=losses.device)
        index = self.indices[rows]
        self.loss_sum.index_add_(0, index, losses)
        bad = (self.first_bad[index] < 0) & ~torch.isfinite(losses)
        self.first_bad[index] = torch.where(bad, step, self.first_bad[index])

    def outcome(self, logs: dict[int, dict]) -> EpochOutcome:
        """The epoch's outcome per row, for the engine."""
        outcome = EpochOutcome()
        outcome.errors = self.errors
        done = [row for row in logs if row not in self.errors]
        outcome.steps = {row: (self.loss_sum[row], self.first_bad[row], logs[row]) for row in done}
        return outcome


def train_stacked(
    specs: list[RunSpec],
    data_cpu: GroupDataset,
    on_evals: list[Callable[[dict], None]],
    on_done: Callable[[int, dict | BaseException], None],
    execution: Execution = Execution(),
    selections: list[Selection] | None = None,
) -> None:
    """Train ``specs`` together (see the module docstring) as ``execution`` says. Each run reports its evaluations to
    its ``on_evals`` entry (as :func:`~benchmark.training.engine.train`'s ``on_eval``) and ends with one
    ``on_done(index, outcome)``: the result :func:`~benchmark.training.engine.train` would return (with
    ``stacked_runs``, how many trained together), or the exception that stopped the run; the others go on. Runs that
    :func:`stack_problem` rejects train one after another, each alone."""
    selections = selections or [Selection()] * len(specs)
    device = resolve_device(execution.device)
    if stack_problem(data_cpu, specs) is None:
        with run_settings(execution) as settings:
            run_engine(specs, data_cpu, on_evals, on_done, StackedSteps(), settings, device, selections)
        return
    for i, spec in enumerate(specs):
        with run_settings(execution) as settings:
            done = lambda _, outcome, i=i: on_done(i, outcome)  # noqa: E731
            run_engine([spec], data_cpu, [on_evals[i]], done, AloneSteps(), settings, device, [selections[i]])
