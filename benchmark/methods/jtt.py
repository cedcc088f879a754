"""``jtt``: Just Train Twice (Liu et al., ICML 2021): find what a short ERM run gets wrong, then upweight it."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch.nn.functional as F

from benchmark.core.hparams import Choice
from benchmark.core.registry import register_method
from benchmark.core.settings import FRACTION, Range
from benchmark.data.batches import Batch, BatchSampler, make_batches
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Method, Stage, TrainInfo
from benchmark.models import GroupModel


def identification_epochs(epochs: int, fraction: float) -> int:
    """T = fraction of the budget, rounded half up, at least 1 and leaving at least one epoch after it."""
    return min(max(1, int(fraction * epochs + 0.5)), epochs - 1)


def minority_samples(data: GroupDataset) -> np.ndarray:
    """Boolean mask over all samples: training samples of the dataset's minority groups (the "true minority" of
    Giannone et al.'s Table 4; :attr:`~benchmark.data.core.GroupDataset.minority_mask`)."""
    return data.minority_mask[data.g_cpu] & (data.split_cpu == 0)


def oracle_partition(method: Method, data: GroupDataset) -> np.ndarray:
    """The ``oracle`` partition of JTT and JM1: :func:`minority_samples` in place of an error set; a dataset
    without minority groups fails the run with that reason."""
    if not data.minority_mask.any():
        raise ValueError(f"{method.name}.oracle needs minority groups, and dataset {data.name} has none")
    return minority_samples(data)


def error_set(method: Method, data: GroupDataset) -> np.ndarray:
    """Boolean mask over all samples: training samples ``method``'s current model misclassifies (eval mode).
    JTT's identification stage ends with it, and JM1's."""
    idx, z = method.encode_split(data, "train")
    wrong = method.model.head(z).argmax(1) != data.y[idx]
    errors = np.zeros(len(data.y), dtype=bool)
    errors[idx[wrong].cpu().numpy()] = True
    return errors


def error_set_facts(errors: np.ndarray, data: GroupDataset) -> dict:
    """|E|, its size per group, and its precision and recall against the training samples of the minority
    groups (named)."""
    minority = minority_samples(data)
    hits = int((errors & minority).sum())
    per_group = np.bincount(data.g_cpu[errors], minlength=data.num_groups).tolist()
    return {
        "minority_groups": data.minority_names,
        "error_set_size": int(errors.sum()),
        "error_set_groups": dict(zip(data.group_names, per_group)),
        "error_set_precision": float(hits / errors.sum()) if errors.any() else None,
        "error_set_recall": float(hits / minority.sum()) if minority.any() else None,
    }


class RepeatSampler(BatchSampler):
    """Each sample drawn ``repeats[sample]`` times per epoch, in uniform random order (JTT's upsampling).

    ``repeats`` is indexed by sample id (length n of the dataset); an epoch has Σ repeats draws. With all
    repeats equal to 1 it draws exactly what :class:`~benchmark.data.batches.ShuffleSampler` draws from the same
    generator.
    """

    name = "repeat"

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int, repeats: np.ndarray):
        super().__init__(data, indices, batch_size)
        self.pool = np.repeat(self.indices, np.asarray(repeats)[self.indices])
        self.n_batches = max(1, -(-len(self.pool) // batch_size))

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        order = rng.permutation(self.pool)
        return make_batches(self.data, order, np.arange(len(order)) // self.batch_size)


@register_method("jtt")
class JTT(Method):
    """Stage "identify": ERM for T epochs. The error set E is the training samples that the stage-1 model
    misclassifies in an eval-mode pass over the training set (decision: the reference code uses the
    train-mode predictions made during the last epoch; we do not). Stage "upweighted": a fresh model
    (the same initialisation seed) trained with ERM on batches drawn from a cycle in which every sample of E
    appears ``upweight`` times and every other sample once (n + (λ_up − 1)|E| draws, shuffled). The reference
    code appends λ_up copies of E to the data (each error sample drawn λ_up + 1 times); here λ_up counts
    draws. The two stages split the run's step budget (T and the rest of ``train.epochs``, in ERM epochs of
    steps): an upsampled cycle is longer than an epoch and buys no extra steps. Uses no training group labels:
    groups are read only to log E's size, precision and recall against the dataset's minority groups (Liu et
    al.'s diagnostic), in the result's stages, unless ``oracle``.

    Args:
        upweight: λ_up, how many times each error-set sample is drawn per epoch (1 gives plain ERM).
        id_fraction: T as a fraction of the epoch budget (rounded, at least 1 epoch, leaving at least 1).
        oracle: E = the training samples of the dataset's minority groups (the ground-truth partition that Just
            Mix Once's Table 3 gives JTT); the identify stage is skipped and the upweighted stage takes the whole
            budget. Such runs read training group labels and record so.
    """

    space = {"upweight": Choice((5, 10, 20, 50, 100)), "id_fraction": Choice((0.1, 0.25, 0.4, 0.5))}
    bounds = {"upweight": Range(1, 10_000), "id_fraction": FRACTION}

    def __init__(
        self, model: GroupModel, info: TrainInfo, upweight: int = 20, id_fraction: float = 0.25, oracle: bool = False
    ):
        super().__init__(model, info)
        self.upweight, self.id_fraction, self.oracle = upweight, id_fraction, oracle

    def labels_read(self) -> str:
        """Training groups with ``oracle`` (its E is the minority groups' samples), else classes."""
        return "training groups" if self.oracle else super().labels_read()

    def stages(self) -> list[Stage]:
        if self.oracle:
            return [Stage("upweighted", self.info.epochs, fresh_model=True)]
        first = identification_epochs(self.info.epochs, self.id_fraction)
        return [Stage("identify", first), Stage("upweighted", self.info.epochs - first, fresh_model=True)]

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        if stage.name != "upweighted":
            return {}
        errors = oracle_partition(self, data) if self.oracle else error_set(self, data)
        stage.sampler = partial(RepeatSampler, repeats=1 + (self.upweight - 1) * errors.astype(np.int64))
        return {"partition": "oracle" if self.oracle else "error-set", **error_set_facts(errors, data)}

    def loss(self, data, batch):
        return F.cross_entropy(self.model(data, batch), batch.y), {}
