"""Core data types: feature spaces, per-sample labels, batches as index tensors, batch samplers.

A dataset is a set of *feature spaces* (each a tensor with its own shape) plus, per sample, the space it
lives in, its row in that space, class ``y``, attribute ``a``, group ``g`` and split. Batches are index
tensors into the samples, ordered by feature space so that a model makes one encoder call per space
without a host sync.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from benchmark.data.images import ImageFiles
from benchmark.errors import BenchError
from benchmark.settings import SEED, Range, check_settings

CONTENT_LIMIT = 16 * 2**20  # data files up to this size are fingerprinted by content, larger ones by size and time

SPLITS = ("train", "val", "test")
SPACE_KINDS = ("image", "sequence", "vector")


@dataclass
class FeatureSpace:
    """One feature space: a name, a kind (image/sequence/vector) and its rows ``x`` (n × shape), a tensor
    in memory or :class:`~benchmark.data.images.ImageFiles` on disk. ``encoder`` names a backbone other
    than the kind's default (e.g. ``resnet18``, see :mod:`benchmark.models`)."""

    name: str
    kind: str
    x: torch.Tensor | ImageFiles
    encoder: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])


@dataclass
class GroupDataset:
    """An in-memory dataset with group structure; every per-sample tensor has length n (int64).

    ``summaries`` names extra metrics that are weighted means of the group accuracies, one weight per
    group: e.g. ``adj_acc`` with the training group proportions (Waterbirds), or ``many``/``medium``/
    ``few`` with 0/1 weights over class groups (long tail). See :func:`benchmark.metrics.group_metrics`.

    ``minority`` lists the minority groups when the builder declares them (groups that are not (class,
    attribute) cells, e.g. feature spaces); left None, they follow DATASETS.md's rule for cells: a group
    (y, a) is a minority (bias-conflicting) group when P(a | y) < P(a) in training
    (:func:`bias_conflicting_groups`). ``minority_mask`` holds the result, one bool per group.

    Construction rejects codes out of range (split, y, g, a, space, row) and NaN or infinite in-memory
    features with a :class:`BenchError`; :meth:`validate` (run on every build) also rejects an empty
    split and a group with no training samples.
    """

    name: str
    spaces: list[FeatureSpace]
    space: torch.Tensor
    row: torch.Tensor
    y: torch.Tensor
    a: torch.Tensor
    g: torch.Tensor
    split_code: torch.Tensor
    class_names: list[str]
    attr_names: list[str]
    group_names: list[str]
    description: str = ""
    summaries: dict[str, list[float]] = field(default_factory=dict)
    minority: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.y)
        for f in ("space", "row", "a", "g", "split_code"):
            if len(getattr(self, f)) != n:
                raise BenchError(f"dataset {self.name}: '{f}' has {len(getattr(self, f))} entries, expected {n}")
        for s in self.spaces:
            if s.kind not in SPACE_KINDS:
                raise BenchError(f"dataset {self.name}: space {s.name} has unknown kind '{s.kind}'")
        for metric, weights in self.summaries.items():
            if len(weights) != len(self.group_names):
                raise BenchError(
                    f"dataset {self.name}: summary '{metric}' has {len(weights)} weights, "
                    f"expected one per group ({len(self.group_names)})"
                )
        self._check_codes()
        self._check_features()
        # host copies read by the samplers every epoch, so batching never syncs with the device
        self.space_cpu = self.space.cpu().numpy()
        self.g_cpu = self.g.cpu().numpy()
        self.y_cpu = self.y.cpu().numpy()
        self.row_cpu = self.row.cpu().numpy()
        self.split_cpu = self.split_code.cpu().numpy()
        self.minority_mask = self._minority_mask()

    def _minority_mask(self) -> np.ndarray:
        """One bool per group: the declared minority groups, else the rule's (all False when groups are not cells)."""
        if self.minority is None:
            train = self.split_cpu == 0
            a = self.a.cpu().numpy()[train]
            return bias_conflicting_groups(self.y_cpu[train], a, self.g_cpu[train], self.num_groups)
        if any(not 0 <= g < self.num_groups for g in self.minority):
            bad = list(self.minority)
            raise BenchError(f"dataset {self.name}: minority groups {bad} outside [0, {self.num_groups})")
        return np.isin(np.arange(self.num_groups), self.minority)

    @property
    def minority_names(self) -> list[str]:
        """Names of the minority groups."""
        return [name for name, m in zip(self.group_names, self.minority_mask) if m]

    def _check_codes(self) -> None:
        """Reject per-sample codes out of range, naming the field and its first bad value (vectorised)."""
        ranges = {
            "split_code": (len(SPLITS), ", ".join(f"{i} = {name}" for i, name in enumerate(SPLITS))),
            "y": (self.num_classes, f"{self.num_classes} classes"),
            "g": (self.num_groups, f"{self.num_groups} groups"),
            "a": (len(self.attr_names), f"{len(self.attr_names)} attributes"),
            "space": (len(self.spaces), f"{len(self.spaces)} feature spaces"),
        }
        for f, (high, what) in ranges.items():
            values = getattr(self, f)
            outside = (values < 0) | (values >= high)
            if outside.any():
                raise BenchError(
                    f"dataset {self.name}: '{f}' has value {int(values[outside][0])} outside [0, {high}) ({what})"
                )
        sizes = torch.tensor([len(s.x) for s in self.spaces], dtype=torch.int64, device=self.space.device)
        outside = (self.row < 0) | (self.row >= sizes[self.space])
        if outside.any():
            i = int(torch.nonzero(outside)[0])
            s = self.spaces[int(self.space[i])]
            raise BenchError(
                f"dataset {self.name}: 'row' has value {int(self.row[i])} outside space {s.name}'s rows [0, {len(s.x)})"
            )

    def _check_features(self) -> None:
        """Reject NaN or infinite features in in-memory spaces (disk-backed ``ImageFiles`` are not read)."""
        for s in self.spaces:
            if isinstance(s.x, ImageFiles) or not s.x.is_floating_point():
                continue
            if torch.isfinite(s.x.sum()):  # one cheap pass: any NaN or ±inf makes the sum non-finite
                continue
            rows = int((~torch.isfinite(s.x).reshape(len(s.x), -1).all(1)).sum())  # exact: the sum may overflow
            if rows:
                raise BenchError(
                    f"dataset {self.name}: space {s.name} has NaN or infinite features in {rows} of {len(s.x)} rows"
                )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_groups(self) -> int:
        return len(self.group_names)

    @property
    def device(self) -> torch.device:
        return self.y.device

    def to(self, device: torch.device | str) -> "GroupDataset":
        """A copy with every tensor on ``device``."""
        moved = {
            f.name: getattr(self, f.name).to(device)
            for f in fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        spaces = [replace(s, x=s.x.to(device)) for s in self.spaces]
        return replace(self, spaces=spaces, **moved)

    def split(self, name: str) -> "torch.utils.data.Dataset":
        """The samples of split ``name`` (train, val or test) as a torch ``Dataset``
        (:class:`~benchmark.data.views.SplitView`)."""
        from benchmark.data.views import SplitView

        if name not in SPLITS:
            raise BenchError(f"unknown split '{name}'; choose from {', '.join(SPLITS)}")
        return SplitView(self, name)

    def indices(self, split: str) -> torch.Tensor:
        """Sample indices of a split, in ascending order."""
        return torch.nonzero(self.split_code == SPLITS.index(split)).flatten()

    def indices_cpu(self, split: str) -> np.ndarray:
        """:meth:`indices` from the host copy (no device sync)."""
        return np.flatnonzero(self.split_cpu == SPLITS.index(split))

    def group_counts(self, split: str) -> torch.Tensor:
        """Number of samples per group in a split (length num_groups)."""
        return torch.bincount(self.g[self.indices(split)], minlength=self.num_groups)

    def counts_table(self) -> dict[str, list[int]]:
        """Counts per split × group, as {split: [count per group]}."""
        return {s: self.group_counts(s).tolist() for s in SPLITS}

    def validate(self) -> None:
        """Reject datasets a run cannot use: an empty split or a group with no training samples."""
        for s, counts in self.counts_table().items():
            if sum(counts) == 0:
                raise BenchError(f"dataset {self.name}: split '{s}' is empty")
        empty = [self.group_names[i] for i, c in enumerate(self.counts_table()["train"]) if c == 0]
        if empty:
            raise BenchError(f"dataset {self.name}: group(s) {', '.join(empty)} have no training samples")


def bias_conflicting_groups(y: np.ndarray, a: np.ndarray, g: np.ndarray, num_groups: int) -> np.ndarray:
    """One bool per group from training labels: True for a (class, attribute) cell (y, a) whose attribute is
    rarer in its class than overall, P(a | y) < P(a) (DATASETS.md, "Minority groups"). All False when some
    group is not a single (y, a) cell (e.g. groups that are feature spaces) or a group has no samples."""
    minority = np.zeros(num_groups, dtype=bool)
    if len(y) == 0:
        return minority
    cells = np.unique(np.stack([g, y, a], 1), axis=0)
    if len(cells) != num_groups or len(np.unique(cells[:, 0])) != num_groups:
        return minority
    n = len(y)
    for group, cls, attr in cells:  # one loop over a handful of groups, at build time
        p_attr_in_class = np.sum((y == cls) & (a == attr)) / np.sum(y == cls)
        minority[group] = p_attr_in_class < np.sum(a == attr) / n
    return minority


@dataclass
class Batch:
    """A batch: sample indices (on the data device) ordered by feature space, with per-space sizes.

    ``max_cell`` is the largest number of samples that share a (group, class) cell, known on the host
    (0: unknown, e.g. a hand-made batch), so that per-cell padding needs no device sync. ``extra``
    holds what a method's own sampler attaches (e.g. a batch of mixing partners).
    """

    idx: torch.Tensor
    space_sizes: tuple[int, ...]
    y: torch.Tensor
    a: torch.Tensor
    g: torch.Tensor
    max_cell: int = 0
    extra: dict = field(default_factory=dict)

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
    if on_disk:  # host rows to load, per disk-backed space (see benchmark.data.images.with_inputs)
        bounds = np.cumsum([0, *sizes.reshape(-1).tolist()])
        rows = data.row_cpu[order]
        for b, batch in enumerate(batches):
            batch.extra["rows"] = {s: rows[bounds[b * n_spaces + s] : bounds[b * n_spaces + s + 1]] for s in on_disk}
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


class RepeatSampler(BatchSampler):
    """Each sample drawn ``repeats[sample]`` times per epoch, in uniform random order (JTT's upsampling).

    ``repeats`` is indexed by sample id (length n of the dataset); an epoch has Σ repeats draws. With all
    repeats equal to 1 it draws exactly what :class:`ShuffleSampler` draws from the same generator.
    """

    name = "repeat"

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int, repeats: np.ndarray):
        super().__init__(data, indices, batch_size)
        self.pool = np.repeat(self.indices, np.asarray(repeats)[self.indices])
        self.n_batches = max(1, -(-len(self.pool) // batch_size))

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        order = rng.permutation(self.pool)
        return make_batches(self.data, order, np.arange(len(order)) // self.batch_size)


class ClassBalancedSampler(BatchSampler):
    """As many draws as samples, with replacement: a uniformly random class, then a uniform sample of it."""

    name = "class-balanced"

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        labels = self.data.y_cpu[self.indices]
        classes, counts = np.unique(labels, return_counts=True)
        by_class = self.indices[np.argsort(labels, kind="stable")]
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        pick = rng.integers(len(classes), size=len(self.indices))
        order = by_class[starts[pick] + (rng.random(len(pick)) * counts[pick]).astype(np.int64)]
        return make_batches(self.data, order, np.arange(len(order)) // self.batch_size)


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


class DatasetBuilder:
    """Base class of registered datasets: declares options and builds a :class:`GroupDataset`.

    ``options`` are the dataset's settings with defaults (set with ``--set data.KEY=VALUE``), ``choices`` the
    allowed values of string options and ``bounds`` the :class:`~benchmark.settings.Range` of numeric ones;
    ``seed`` is always available and fixes the split. ``train_defaults`` is the budget this dataset
    recommends (overridden by ``--set train.*`` / ``--epochs``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    options: ClassVar[dict] = {}
    choices: ClassVar[dict[str, tuple]] = {}
    bounds: ClassVar[dict[str, Range]] = {}
    train_defaults: ClassVar[dict] = {}
    needs_data_root: ClassVar[bool] = False
    data_files: ClassVar[tuple[str, ...]] = ()  # glob patterns under --data-root that the fingerprint covers

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        """Construct the dataset deterministically from ``options`` (which include ``seed``)."""
        raise NotImplementedError

    @classmethod
    def option_defaults(cls) -> dict:
        """All options with their defaults, the data seed first."""
        return {"seed": 0, **cls.options}

    @classmethod
    def fingerprint(cls, data_root: str | None) -> str | None:
        """A hash of the files a ``--data-root`` dataset reads (None for datasets built offline): the content of
        each file of ``data_files`` up to :data:`CONTENT_LIMIT` bytes (so a copy of the folder keeps its runs), size
        and modification time of larger ones; every file under the root when the builder declares none. Images a
        metadata file lists are covered through that file."""
        if not cls.needs_data_root or data_root is None:
            return None
        root = Path(data_root)
        found = {p for pattern in cls.data_files for p in root.glob(pattern)} if cls.data_files else root.rglob("*")
        digest = hashlib.sha256()
        for path in sorted(p for p in found if p.is_file()):
            info = path.stat()
            digest.update(f"{path.relative_to(root)}\0{info.st_size}\0".encode())
            digest.update(path.read_bytes() if info.st_size <= CONTENT_LIMIT else str(info.st_mtime_ns).encode())
        return digest.hexdigest()[:16]

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """``options`` checked against the defaults' types, ``choices`` and ``bounds`` (the data seed is in
        :data:`~benchmark.settings.SEED`); returns them typed. A dataset whose options constrain each other
        extends this; :func:`benchmark.data.build_dataset` and the sweep planner both call it."""
        return check_settings("data", options, cls.option_defaults(), cls.choices, {"seed": SEED, **cls.bounds})
