"""Many runs trained together in one process as one stacked model.

One small run per process cannot keep a GPU busy: a step of these models is about a hundred kernel launches for a
few MFLOP, so the device waits on the host. Runs that share the dataset and the training budget (seeds, trials,
even methods) train here in lockstep, epoch by epoch:

- their models' parameters are the rows of one flat leaf tensor (runs × parameters); each run's modules alias
  their row, so evaluation and the methods' hooks read and write the stacked values (:class:`StackedParameters`);
- each feature space's encoder runs once per step for every run (``torch.func.vmap`` over the rows), on each
  run's samples of that space padded to the epoch's largest count, and each batch gets its latents ahead
  (:attr:`~benchmark.data.batches.Batch.latents`); at each evaluation the val and test batches, the same for
  every run, are encoded once for all runs the same way;
- each method's loss still runs once per run, on its own batch, with the model's parameters swapped for its rows,
  so methods need no change (a loss that encodes anything else runs its encoders on the rows too);
- each run keeps its own optimiser (the one it would have alone, over its parameters that require gradients,
  which alias its row), fed with its row of the stacked gradient; a parameter whose gradient the run alone would
  not have (the encoder of a feature space absent from its batch) gets none, so ``torch.optim`` skips it as it
  would alone.

Every run keeps its sampler stream, batch generator, stages, evaluations, selection and result
(:class:`~benchmark.training.engine.RunTraining`). The numbers are a run's alone up to floating-point reassociation: the
stacked kernels (grouped convolutions, batched products, padded batches) sum in other orders than a run's own.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable

import numpy as np
import torch

from benchmark.core.registry import METHODS
from benchmark.data.batches import Batch
from benchmark.data.core import GroupDataset
from benchmark.data.images import ImageFiles
from benchmark.models import GroupModel
from benchmark.runs.spec import Execution, RunSpec
from benchmark.training.devices import resolve_device, synchronize
from benchmark.training.engine import RunSettings, RunTraining, autocast, run_settings, train


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


class StackedParameters:
    """The shared models' parameters of R runs as the rows of one flat leaf ``flat`` (R × N, the models'
    parameter order); each run's module parameters alias its row."""

    def __init__(self, models: list[GroupModel]):
        named = list(models[0].named_parameters())
        self.names = [name for name, _ in named]
        self.shapes = [p.shape for _, p in named]
        self.sizes = [p.numel() for _, p in named]
        for model in models[1:]:
            if [(n, p.shape) for n, p in model.named_parameters()] != [(n, p.shape) for n, p in named]:
                raise ValueError("stacked runs need models of the same parameters and shapes")
        rows = [torch.cat([p.detach().reshape(-1) for p in model.parameters()]) for model in models]
        self.flat = torch.stack(rows).requires_grad_()
        self.flat.grad = torch.zeros_like(self.flat)  # kept: backward accumulates into it, zeroed before each step
        self.space = [int(n.split(".")[1]) + 1 if n.startswith("encoders.") else 0 for n in self.names]
        """Per parameter: 1 + the feature space whose encoder it belongs to, 0 for the head."""
        self.grads = [[g.view(shape) for g, shape in zip(row.split(self.sizes), self.shapes)] for row in self.flat.grad]
        """Per row and parameter: its gradient, a view of ``flat.grad``."""
        for r, model in enumerate(models):
            self.adopt(r, model)

    def adopt(self, r: int, model: GroupModel) -> None:
        """Make ``model`` run ``r``'s: a parameter that does not alias its row yet (a fresh model) has its values
        copied into the row, then points at it."""
        for p, block in zip(model.parameters(), self.flat.data[r].split(self.sizes)):
            view = block.view(p.shape)
            if p.data_ptr() != view.data_ptr():
                view.copy_(p.detach())
                p.data = view

    def hand_gradients(self, r: int, model: GroupModel, present: np.ndarray) -> None:
        """Give ``model`` (row ``r``'s) its row of the stacked gradient, except the encoders of the feature spaces
        ``present`` (bool per column: the head, then each space) says its step had no samples of: their gradient is
        None, as alone, where those encoders were not called."""
        for p, grad, column in zip(model.parameters(), self.grads[r], self.space):
            p.grad = grad if present[column] else None

    def tensors(self) -> dict[str, torch.Tensor]:
        """Each parameter over the runs (R × its shape): views of ``flat`` through which gradients reach it."""
        R = len(self.flat)
        blocks = self.flat.split(self.sizes, dim=1)
        return {name: block.view(R, *shape) for name, block, shape in zip(self.names, blocks, self.shapes)}


class EpochLayout:
    """Where an epoch's samples go in the stacked encoder calls, laid out on the host from the batches' host
    indices and copied to the device once.

    ``rows[s]`` (steps × R × P_s): each run's rows of feature space s at each step, its batch's parts (the batch and
    the batches attached to it) one after another, padded with row 0 to the epoch's largest count P_s (fixed
    shapes for the whole epoch). ``positions`` (per step): where each part's latents sit among the step's encoder
    outputs (space by space, run by run), in the parts' batch order; ``lengths`` (per step, host): the parts'
    sizes, in run and part order. ``present[t]`` (host, R × (1 + spaces), bool): whether each run's step has samples
    of each feature space (column 0: always), i.e. whether the run alone would call that space's encoder.
    """

    def __init__(self, data: GroupDataset, steps: list[list[list[Batch]]], num_runs: int):
        idx, step_of, run_of, lengths = [], [], [], []
        for t, runs in enumerate(steps):
            lengths.append([])
            for r, parts in runs:
                for part in parts:
                    host = part.host_idx if part.host_idx is not None else part.idx.cpu().numpy()
                    idx.append(host)
                    step_of.append(np.full(len(host), t))
                    run_of.append(np.full(len(host), r))
                    lengths[-1].append(len(host))
        idx = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        step_of = np.concatenate(step_of) if step_of else idx
        run_of = np.concatenate(run_of) if run_of else idx
        n_spaces, T = len(data.spaces), len(steps)
        space = data.space_cpu[idx]
        key = (step_of * num_runs + run_of) * n_spaces + space  # (step, run, space) cell of every sample
        order = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=T * num_runs * n_spaces)
        rank = np.empty(len(idx), dtype=np.int64)
        rank[order] = np.arange(len(idx)) - (np.cumsum(counts) - counts)[key[order]]
        self.width = counts.reshape(T, num_runs, n_spaces).max((0, 1), initial=0)  # P_s
        base = np.concatenate([[0], np.cumsum(self.width * num_runs)[:-1]])
        positions = base[space] + run_of * self.width[space] + rank
        rows = []
        for s in range(n_spaces):
            table = np.zeros((T, num_runs, self.width[s]), dtype=np.int64)
            mine = space == s
            table[step_of[mine], run_of[mine], rank[mine]] = data.row_cpu[idx[mine]]
            rows.append(table)
        per_step = np.bincount(step_of, minlength=T)
        self.present = np.concatenate([np.ones((T, num_runs, 1), bool), counts.reshape(T, num_runs, n_spaces) > 0], 2)
        parts = torch.from_numpy(np.concatenate([*(t.reshape(-1) for t in rows), positions])).to(data.device)
        parts = parts.split([*(t.size for t in rows), len(positions)])
        self.rows = [p.view(t.shape) for p, t in zip(parts, rows)]
        self.positions = parts[-1].split(per_step.tolist())
        self.lengths = lengths


class StackedEncoders:
    """Each feature space's encoder as one call for all runs: ``torch.func.vmap`` over the runs' parameter rows of
    the template model's encoder (its buffers, the data's standardisation, are the same for every run), on each
    run's own inputs (training) or on inputs all runs share (:meth:`shared`: evaluation)."""

    def __init__(self, template: GroupModel):
        self.template = template
        self.calls, self.shared_calls = [], []
        for s, encoder in enumerate(template.encoders):
            prefix = f"encoders.{s}."

            def call(params, x, encoder=encoder):
                return torch.func.functional_call(encoder, params, (x,))

            self.calls.append((prefix, torch.func.vmap(call)))
            self.shared_calls.append((prefix, torch.func.vmap(call, in_dims=(0, None))))

    @staticmethod
    def rows_of(params: dict, prefix: str) -> dict:
        """The stacked parameters of one encoder, named as in it."""
        return {name[len(prefix) :]: value for name, value in params.items() if name.startswith(prefix)}

    def shared(self, data: GroupDataset, batch: Batch, params: dict) -> torch.Tensor:
        """Every run's latents of one batch (R × len(batch) × k, batch order), each space's inputs encoded once
        for all runs."""
        inputs = GroupModel.inputs(data, batch)
        parts = [
            call(self.rows_of(params, prefix), x)
            for (prefix, call), x, size in zip(self.shared_calls, inputs, batch.space_sizes)
            if size > 0
        ]
        return torch.cat(parts, 1)

    def __call__(self, data: GroupDataset, layout: EpochLayout, t: int, params: dict) -> torch.Tensor:
        """The latents of step ``t``'s parts, in the order of ``layout.positions[t]``."""
        outputs = []
        for s, (prefix, call) in enumerate(self.calls):
            width = layout.width[s]
            if width == 0:
                continue
            z = call(self.rows_of(params, prefix), data.spaces[s].x[layout.rows[s][t]])
            outputs.append(z.reshape(-1, z.shape[-1]))
        return torch.cat(outputs)[layout.positions[t]]


class RowSwap:
    """Runs a method's loss with its model's parameters replaced by that run's rows of the stacked parameters
    (views that carry the gradient to the stack), and puts the parameters back afterwards."""

    def __init__(self, model: GroupModel):
        self.slots = []
        for name, _ in model.named_parameters():
            owner, _, attr = name.rpartition(".")
            self.slots.append((model.get_submodule(owner), attr))

    def __call__(self, rows: list[torch.Tensor], loss: Callable, *args):
        originals = [module._parameters[attr] for module, attr in self.slots]
        for (module, attr), row in zip(self.slots, rows):
            module._parameters[attr] = row
        try:
            return loss(*args)
        finally:
            for (module, attr), original in zip(self.slots, originals):
                module._parameters[attr] = original


def train_stacked(
    specs: list[RunSpec],
    data_cpu: GroupDataset,
    on_evals: list[Callable[[dict], None]],
    on_done: Callable[[int, dict | BaseException], None],
    execution: Execution = Execution(),
    keeps: list | None = None,
) -> None:
    """Train ``specs`` together (see the module docstring) as ``execution`` says. Each run reports its evaluations to
    its ``on_evals`` entry (as :func:`~benchmark.training.engine.train`'s ``on_eval``) and ends with one
    ``on_done(index, outcome)``: the result :func:`~benchmark.training.engine.train` would return (with
    ``stacked_runs``, how many trained together), or the exception that stopped the run; the others go on. Runs that
    :func:`stack_problem` rejects train one after another, each alone."""
    keeps = keeps or [None] * len(specs)
    with run_settings(execution) as settings:
        device = resolve_device(execution.device)
        data = data_cpu.to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if stack_problem(data, specs) is not None:
            for i, spec in enumerate(specs):
                try:
                    on_done(i, train(spec, data_cpu, on_evals[i], execution, keeps[i]))
                except Exception as exc:  # noqa: BLE001 - the run fails, the others go on
                    on_done(i, exc)
            return
        runs, start = {}, time.perf_counter()
        for i, spec in enumerate(specs):
            try:
                runs[i] = RunTraining(spec, data, on_evals[i], keeps[i], start=start)
            except Exception as exc:  # noqa: BLE001
                on_done(i, exc)
        if runs:
            Stack(runs, on_done, settings).train()


class Stack:
    """The runs of :func:`train_stacked` in lockstep: ``runs`` maps each run's index to its
    :class:`~benchmark.training.engine.RunTraining`; its row in the stack is its position. A run that fails is reported
    to
    ``on_done`` at once and stops updating its row; the others end together, their results completed with what
    the run ``settings`` (:class:`~benchmark.training.engine.RunSettings`) say about determinism."""

    def __init__(self, runs: dict[int, RunTraining], on_done: Callable, settings: RunSettings):
        self.runs, self.on_done, self.settings = runs, on_done, settings
        self.rows = list(runs)  # row -> run index
        self.active = dict(enumerate(self.rows))  # rows still training -> run index
        models = [run.method.model for run in runs.values()]
        self.params = StackedParameters(models)
        self.encoders = StackedEncoders(models[0])
        self.swaps = {row: RowSwap(model) for row, model in enumerate(models)}
        self.optimizers: dict[int, torch.optim.Optimizer] = {}  # row -> its run's optimiser of the current stage
        self.first = next(iter(runs.values()))

    def fail(self, row: int, exc: BaseException) -> None:
        self.optimizers.pop(row, None)
        self.on_done(self.active.pop(row), exc)

    def guarded(self, action: Callable[[int, RunTraining], object]) -> dict[int, object]:
        """``action(row, run)`` for every active row; a row whose action raises fails. Returns the values by row."""
        values = {}
        for row, i in list(self.active.items()):
            try:
                values[row] = action(row, self.runs[i])
            except Exception as exc:  # noqa: BLE001 - this run fails, the others go on
                self.fail(row, exc)
        return values

    def begin_stage(self, row: int, run: RunTraining) -> None:
        """A run entering its next stage (:meth:`~benchmark.training.engine.RunTraining.begin_stage`: the stage hook, a
        fresh model, its new optimiser), its model adopted into its row."""
        self.optimizers[row] = run.begin_stage()
        self.swaps[row] = RowSwap(run.method.model)
        self.params.adopt(row, run.method.model)

    def train(self) -> None:
        for _ in range(self.first.spec.train.epochs):
            self.guarded(lambda row, run: self.begin_stage(row, run) if run.epochs_left == 0 else None)
            epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
            batches = self.guarded(lambda row, run: run.begin_epoch())
            if not self.active:
                return
            outcome = self.epoch(batches)
            synchronize(self.first.data.device)
            times = time.perf_counter() - epoch_start, time.process_time() - epoch_cpu
            self.encode_evaluations()
            self.guarded(partial(outcome.end_epoch, times=times))
            for run in self.runs.values():
                for batch in (b for split in run.evals.values() for b in split):
                    batch.latents = None
        for i in self.active.values():
            result = {**self.runs[i].result(), "stacked_runs": len(self.rows), **self.settings.determinism()}
            self.on_done(i, result)

    @torch.no_grad()
    def encode_evaluations(self) -> None:
        """Every active run's latents of its val and test batches (the same batches for every run), computed for
        all runs at once, for their evaluations (:meth:`~benchmark.training.engine.RunTraining.end_epoch`) to use."""
        data, params = self.first.data, self.params.tensors()
        with autocast(self.first.spec.train, data.device):
            for split, batches in self.first.evals.items():
                for b, batch in enumerate(batches):
                    latents = self.encoders.shared(data, batch, params)
                    for row, i in self.active.items():
                        self.runs[i].evals[split][b].latents = latents[row]

    def epoch(self, batches: dict[int, list[Batch]]) -> _EpochOutcome:
        """One epoch of steps for the active rows, each on its ``batches``."""
        data, config = self.first.data, self.first.spec.train
        steps, first_step = self.first.steps_per_epoch, self.runs[next(iter(self.active.values()))].step
        layout = EpochLayout(data, [[(row, batches[row][t].parts()) for row in self.active] for t in range(steps)],
                             len(self.rows))  # fmt: skip
        outcome = _EpochOutcome(len(self.rows), data.device)
        training = dict(self.active)
        for t in range(steps):
            params = self.params.tensors()
            per_row = list(zip(*(p.unbind(0) for p in params.values())))  # each row's views, in parameter order
            with autocast(config, data.device):
                latents = iter(self.encoders(data, layout, t, params).split(layout.lengths[t]))
            step_batches = {row: batches[row][t] for row in self.active}
            for batch in step_batches.values():
                for part in batch.parts():
                    part.latents = next(latents)
            losses = {}
            for row in list(training):
                method = self.runs[training[row]].method
                try:
                    with autocast(config, data.device):
                        loss, logs = self.swaps[row](per_row[row], method.loss, data, step_batches[row])
                    losses[row], outcome.logs[row] = loss, logs
                except Exception as exc:  # noqa: BLE001 - this run fails at the epoch's end, the others go on
                    outcome.errors[row] = exc
                    del training[row]
            self.params.flat.grad.zero_()
            for row in training:
                self.optimizers[row].zero_grad(set_to_none=True)
            if losses:
                stacked = torch.stack(list(losses.values()))
                stacked.sum().backward()
                for row in losses:
                    self.params.hand_gradients(row, self.runs[training[row]].method.model, layout.present[t][row])
                    self.optimizers[row].step()
                outcome.add(tuple(losses), stacked.detach(), first_step + t + 1)
            for batch in step_batches.values():
                for part in batch.parts():
                    part.latents = None
            for row in losses:
                self.runs[training[row]].method.after_step(step_batches[row], outcome.logs[row])
        return outcome


class _EpochOutcome:
    """Per row over an epoch: the summed loss, the first step whose loss was not finite (-1: none), the last
    step's logs, and the error that stopped a row's loss."""

    def __init__(self, num_rows: int, device):
        self.loss_sum = torch.zeros(num_rows, device=device)
        self.first_bad = torch.full((num_rows,), -1, device=device)
        self.logs: dict[int, dict] = {}
        self.errors: dict[int, BaseException] = {}
        self.indices: dict[tuple[int, ...], torch.Tensor] = {}

    def end_epoch(self, row: int, run: RunTraining, times: tuple[float, float]) -> None:
        """Close the epoch of ``row``'s run (:meth:`~benchmark.training.engine.RunTraining.end_epoch`) with the stack's
        wall and CPU time, or raise the error that stopped its loss."""
        if row in self.errors:
            raise self.errors[row]
        run.end_epoch(self.loss_sum[row], self.first_bad[row], self.logs[row], *times)

    def add(self, rows: tuple[int, ...], losses: torch.Tensor, step: int) -> None:
        """One step's detached ``losses`` of ``rows`` (no host sync: the rows' index tensor is copied to the device
        once, when the rows first come, not every step)."""
        if rows not in self.indices:
            self.indices[rows] = torch.tensor(rows, device=losses.device)
        index = self.indices[rows]
        self.loss_sum.index_add_(0, index, losses)
        bad = (self.first_bad[index] < 0) & ~torch.isfinite(losses)
        self.first_bad[index] = torch.where(bad, step, self.first_bad[index])
