"""Core data types: feature spaces and the dataset of per-sample labels over them.

A dataset is a set of *feature spaces* (each a tensor with its own shape) plus, per sample, the space it
lives in, its row in that space, class ``y``, attribute ``a``, group ``g`` and split. Batches and samplers
are in :mod:`benchmark.data.batches`, the builder base class in :mod:`benchmark.data.builder`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.data.images import ImageFiles

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
    ``few`` with 0/1 weights over class groups (long tail). See :func:`benchmark.core.metrics.group_metrics`.

    ``minority`` lists the minority groups when the builder declares them (groups that are not (class,
    attribute) cells, e.g. feature spaces); left None, they follow docs/datasets.md's rule for cells: a group
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
    rarer in its class than overall, P(a | y) < P(a) (docs/datasets.md, "Minority groups"). All False when some
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


def observed_cells(y: np.ndarray, a: np.ndarray, class_names: list[str], attr_names: list[str]):
    """Groups as the (class, attribute) cells that occur: each sample's group (in the order of y·A + a) and the
    groups' names ``<class>,<attribute>``."""
    cells, g = np.unique(y * len(attr_names) + a, return_inverse=True)
    names = [f"{class_names[c // len(attr_names)]},{attr_names[c % len(attr_names)]}" for c in cells]
    return g.astype(np.int64), names


def codes_tensor(values) -> torch.Tensor:
    """Integer codes (a numpy array or a tensor) as an int64 tensor of their own."""
    return torch.as_tensor(np.array(values, dtype=np.int64))


def vector_dataset(name: str, space: str, x, y, a, g, split, names: tuple[list, list, list], description: str):
    """A dataset of one vector feature space ``space`` whose rows are its samples, from numpy arrays (or a tensor
    ``x``): features, class, attribute, group and split codes, and (class, attribute, group) ``names``."""
    n = len(y)
    return GroupDataset(
        name=name,
        spaces=[FeatureSpace(space, "vector", torch.as_tensor(x))],
        space=torch.zeros(n, dtype=torch.int64),
        row=torch.arange(n),
        y=codes_tensor(y),
        a=codes_tensor(a),
        g=codes_tensor(g),
        split_code=codes_tensor(split),
        class_names=list(names[0]),
        attr_names=list(names[1]),
        group_names=list(names[2]),
        description=description,
    )
