"""The pieces of a stacked model (:mod:`benchmark.training.stacking`): R runs' parameters as the rows of one flat
tensor their modules alias, where an epoch's samples go in the stacked encoder calls, each feature space's encoder
vmapped over the rows, and a run's loss computed on its rows with the latents the stack computed for it."""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch

from benchmark.data.batches import Batch
from benchmark.data.core import GroupDataset
from benchmark.models import GroupModel


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
    """Where an epoch's samples go in the stacked encoder calls, laid out on the host from the batches' indices (one
    copy to the host and one back per epoch).

    ``rows[s]`` (steps × R × P_s): each run's rows of feature space s at each step, its batch's parts (the batch and
    the batches attached to it) one after another, padded with row 0 to the epoch's largest count P_s (fixed
    shapes for the whole epoch). ``positions`` (per step): where each part's latents sit among the step's encoder
    outputs (space by space, run by run), in the parts' batch order; ``lengths`` (per step, host): the parts'
    sizes, in run and part order. ``present[t]`` (host, R × (1 + spaces), bool): whether each run's step has samples
    of each feature space (column 0: always), i.e. whether the run alone would call that space's encoder.
    """

    def __init__(self, data: GroupDataset, steps: list[list[tuple[int, list[Batch]]]], num_runs: int):
        parts, lengths = [], []  # every (step, row, batch part); per step, the parts' sizes
        for t, runs in enumerate(steps):
            lengths.append([])
            for r, batch_parts in runs:
                parts += [(t, r, part) for part in batch_parts]
                lengths[-1] += [len(part) for part in batch_parts]
        sizes = [len(part) for _, _, part in parts]
        idx = torch.cat([part.idx for _, _, part in parts]).cpu().numpy() if parts else np.zeros(0, dtype=np.int64)
        step_of = np.repeat([t for t, _, _ in parts], sizes).astype(np.int64)
        run_of = np.repeat([r for _, r, _ in parts], sizes).astype(np.int64)
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
        laid = torch.from_numpy(np.concatenate([*(t.reshape(-1) for t in rows), positions])).to(data.device)
        laid = laid.split([*(t.size for t in rows), len(positions)])
        self.rows = [p.view(t.shape) for p, t in zip(laid, rows)]
        self.positions = laid[-1].split(per_step.tolist())
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
    (views that carry the gradient to the stack) and the latents the stack computed for its batches supplied
    (:func:`supplied_latents`), and puts the parameters back afterwards."""

    def __init__(self, model: GroupModel):
        self.model, self.slots = model, []
        for name, _ in model.named_parameters():
            owner, _, attr = name.rpartition(".")
            self.slots.append((model.get_submodule(owner), attr))

    def __call__(self, rows: list[torch.Tensor], latents: dict[int, torch.Tensor], loss: Callable, *args):
        originals = [module._parameters[attr] for module, attr in self.slots]
        for (module, attr), row in zip(self.slots, rows):
            module._parameters[attr] = row
        try:
            with supplied_latents(self.model, latents):
                return loss(*args)
        finally:
            for (module, attr), original in zip(self.slots, originals):
                module._parameters[attr] = original


@contextlib.contextmanager
def supplied_latents(model: GroupModel, latents: dict[int, torch.Tensor]):
    """For the duration, ``model.encode`` (and ``encode_together``) returns the latents given for a batch (keyed by
    ``id(batch)``) instead of encoding it; batches without latents are encoded as usual."""

    def encode(data: GroupDataset, batch: Batch) -> torch.Tensor:
        z = latents.get(id(batch))
        return GroupModel.encode(model, data, batch) if z is None else z

    def encode_together(data: GroupDataset, batches: list[Batch]) -> list[torch.Tensor]:
        if all(id(batch) in latents for batch in batches):
            return [latents[id(batch)] for batch in batches]
        return GroupModel.encode_together(model, data, batches)

    model.encode, model.encode_together = encode, encode_together
    try:
        yield
    finally:
        del model.encode, model.encode_together
