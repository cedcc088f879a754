"""Batches as index tensors into a dataset's samples, ordered by feature space so that a model makes one
encoder call per space without a host sync; the general batch samplers that cut epochs into them (a sampler only
one method uses lives in that method's module); and the stream that turns a sampler into a fixed number of
optimizer steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.data.core import GroupDataset
from benchmark.data.images import ImageFiles


@dataclass
class Batch:
    """A batch: sample indices (on the data device) ordered by feature space, with per-space sizes.

    ``max_cell`` is the largest number of samples that share a (group, class) cell, known on the host
    (0: unknown, e.g. a hand-made batch), so that per-cell padding needs no device sync.

    ``rows`` holds, per disk-backed feature space (:class:`~benchmark.data.images.ImageFiles`), the host rows of
    its samples in batch order, and ``inputs`` the images loaded for them ahead of use
    (:func:`~benchmark.data.images.prefetched`); the model loads any that were not
    (:meth:`~benchmark.models.GroupModel.inputs`). In-memory spaces need neither.
    A method's own sampler may attach other batches (``attached``, e.g. mixing partners, whose images are
    prefetched with the batch's) and tensors of its own (``extra``).
    """

    idx: torch.Tensor
    space_sizes: tuple[int, ...]
    y: torch.Tensor
    a: torch.Tensor
    g: torch.Tensor
    max_cell: int = 0
    rows: dict[int, np.ndarray] = field(default_factory=dict)
    inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    attached: dict[str, Batch] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def parts(self) -> list[Batch]:
        """The batch and the batches attached to it."""
        return [self, *self.attached.values()]

    def __len__(self) -> int:
        return len(self.idx)


def make_batches(data: GroupDataset, order: np.ndarray, batch_of: np.ndarray) -> list[Batch]:
    """Cut ``order`` (sample indices) into batches given each element's batch number; batch numbers that no
    element has make no (empty) batch.

    Within a batch the samples are ordered by feature space (stable), and the per-space sizes are
    computed on the host, so splitting encoder inputs needs no device sync. One host-to-device copy
    per call.
    """
    batch_of = np.unique(batch_of, return_inverse=True)[1].reshape(-1)  # consecutive, order kept
    n_spaces = len(data.spaces)
    sample_space = data.space_cpu[order]
    key = batch_of.astype(np.int64) * n_spaces + sample_space
    perm = np.argsort(key, kind="stable")
    order, key = order[perm], key[perm]
    n_batches = int(batch_of.max()) + 1 if len(batch_of) else 0
    sizes = np.bincount(key, minlength=n_batches * n_spaces).reshape(n_batches, n_spaces)
    n_cells = data.num_groups * data.num_classes
    cell = key // n_spaces * n_cells + data.g_cpu[order] * data.num_classes + data.y_cpu[order]
    max_cell = np.bincount(cell, minlength=n_batches * n_cells).reshape(n_batches, n_cells).max(1, initial=0)
    idx_all = torch.from_numpy(order).to(data.device, non_blocking=True)
    y_all, a_all, g_all = data.y[idx_all], data.a[idx_all], data.g[idx_all]
    lengths = sizes.sum(1).tolist()
    batches = [
        Batch(idx, tuple(sz), y, a, g, biggest)
        for idx, y, a, g, sz, biggest in zip(
            torch.split(idx_all, lengths),
            torch.split(y_all, lengths),
            torch.split(a_all, lengths),
            torch.split(g_all, lengths),
            sizes.tolist(),
            max_cell.tolist(),
        )
    ]
    on_disk = [s for s, space in enumerate(data.spaces) if isinstance(space.x, ImageFiles)]
    if on_disk:  # host rows to load, per disk-backed space
        bounds = np.cumsum([0, *sizes.reshape(-1).tolist()])
        rows = data.row_cpu[order]
        for b, batch in enumerate(batches):
            batch.rows = {s: rows[bounds[b * n_spaces + s] : bounds[b * n_spaces + s + 1]] for s in on_disk}
    return batches


def eval_batches(data: GroupDataset, split: str, batch_size: int) -> list[Batch]:
    """Fixed batches covering a split once, in index order."""
    order = data.indices_cpu(split)
    return make_batches(data, order, np.arange(len(order)) // batch_size)


class BatchSampler:
    """Yields the training batches of one epoch; subclasses choose the order."""

    name: ClassVar[str]

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int):
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.n_batches = max(1, -(-len(self.indices) // batch_size))

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.n_batches


class ShuffleSampler(BatchSampler):
    """Uniform random order, consecutive chunks of ``batch_size``."""

    name = "shuffle"

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        order = rng.permutation(self.indices)
        return make_batches(self.data, order, np.arange(len(order)) // self.batch_size)


class StratifiedSampler(BatchSampler):
    """Every sample once per epoch; each batch holds each group in its training proportion (±1 sample).

    The epoch has ``ceil(n / batch_size)`` batches; element j of group g's random permutation goes to
    batch ``floor(j · n_batches / n_g)``, so group g contributes ⌊n_g/n_batches⌋ or ⌈n_g/n_batches⌉
    samples to every batch, and batch sizes stay within G of n / n_batches (≤ batch_size on average).
    (When every group is smaller than n_batches, which needs batch_size < G, batches no group reaches
    are dropped: the epoch has fewer, larger batches.)
    """

    name = "stratified"

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        groups = self.data.g_cpu[self.indices]
        order = np.lexsort((rng.random(len(self.indices)), groups))  # by group, random within group
        sorted_groups = groups[order]
        counts = np.bincount(sorted_groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.arange(len(order)) - starts[sorted_groups]
        batch_of = rank * self.n_batches // counts[sorted_groups]
        return make_batches(self.data, self.indices[order], batch_of)


SAMPLERS: dict[str, type[BatchSampler]] = {c.name: c for c in (StratifiedSampler, ShuffleSampler)}


class BatchStream:
    """Consecutive batches from successive epochs of a sampler, so that a stage takes exactly the number of
    steps its budget gives it, however long its sampler's cycle is (an upsampled "epoch" is only a cycle)."""

    def __init__(self, sampler: BatchSampler, rng: np.random.Generator):
        self.sampler, self.rng, self.pending = sampler, rng, []

    def take(self, count: int) -> list[Batch]:
        """The next ``count`` batches, drawing new sampler epochs as needed."""
        out: list[Batch] = []
        while len(out) < count:
            if not self.pending:
                self.pending = self.sampler.epoch(self.rng)
                if not self.pending:
                    raise BenchError(f"sampler {self.sampler.name} produced an empty epoch")
            part = count - len(out)
            out += self.pending[:part]
            self.pending = self.pending[part:]
        return out
