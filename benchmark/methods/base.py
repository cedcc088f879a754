"""The method interface: a small ``nn.Module`` the trainer calls at set-up, epoch start, each step and after it.

Hyperparameters are plain keyword arguments of ``__init__`` with documented defaults (scikit-learn's
habit); :meth:`Method.defaults` reads them from the signature, so they are declared once. A method
may add parameters or buffers (they join the optimiser and move with ``.to``) and freeze parts of the
model; it never builds its own backbone.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch
from torch import nn

from benchmark.core.hparams import SHARED_SPACE
from benchmark.core.settings import Range, check_settings
from benchmark.data.batches import Batch, BatchSampler, eval_batches
from benchmark.data.core import GroupDataset
from benchmark.data.images import prefetched
from benchmark.models import GroupModel


@dataclass
class TrainInfo:
    """What a method may know about its training run (tensors on the training device)."""

    num_classes: int
    num_groups: int
    train_group_counts: torch.Tensor
    train_class_counts: torch.Tensor
    epochs: int
    steps_per_epoch: int
    generator: torch.Generator


@dataclass
class Stage:
    """One training stage: its share of the run's budget in ERM epochs (``epochs`` × ⌈n_train / batch_size⌉
    optimizer steps, whatever its sampler's cycle; the stages' epochs add up to ``train.epochs``), whether it
    starts from a freshly initialised model (the run's initialisation seed), and its batch sampler: a callable
    ``(data, train_indices, batch_size) -> BatchSampler`` such as a sampler class or a ``functools.partial`` of
    one (None: the ``train.sampler`` default, which depends on ``needs_group_labels``).

    ``from_selected``: the stage starts from the previous stage's evaluation that the run's selection rule picks
    (the method's whole state restored), as decoupled training picks a representation before retraining a head;
    otherwise it continues from the previous stage's last state.

    The engine builds a new optimiser over the parameters that require gradients at each stage start,
    so a stage may freeze parts of the model in :meth:`Method.on_stage_start`.
    """

    name: str
    epochs: int
    fresh_model: bool = False
    sampler: Callable[[GroupDataset, np.ndarray, int], BatchSampler] | None = None
    from_selected: bool = False


@dataclass
class Refit:
    """What :meth:`Method.refit` returns: the samples it held out of the refit (``held_out``: sample ids), the
    predicted classes there of the model fitted without them (``predicted``), and facts to record with the refit
    (JSON-friendly)."""

    held_out: np.ndarray
    predicted: np.ndarray
    facts: dict


class Method(nn.Module):
    """Base class of registered methods; subclasses implement :meth:`loss`.

    Class attributes: ``space`` maps the method's own hparam names to random-search distributions
    (:mod:`benchmark.core.hparams`; trials also draw :data:`~benchmark.core.hparams.SHARED_SPACE`, see
    :meth:`search_space`); ``choices`` lists the allowed values of string hparams and ``bounds`` the
    allowed :class:`~benchmark.core.settings.Range` of numeric ones (checked with every setting, before training);
    ``needs_group_labels`` says whether the method reads *training* group labels, and :meth:`label_tier` names the
    most it reads in training (``bench list`` shows it; a run records :meth:`labels_read`). ``stackable`` says whether
    its runs may train stacked with others in one process (:mod:`benchmark.training.stacking`): its loss then sees
    latents the stacked encoders computed, through the model's ``encode``, and the model's parameters as rows of the
    stack; a method whose steps cannot run so (e.g. one that keeps its own references to the model's parameter tensors
    across steps) sets it False and trains one run at a time.
    """

    name: ClassVar[str]
    space: ClassVar[dict] = {}
    choices: ClassVar[dict[str, tuple]] = {}
    bounds: ClassVar[dict[str, Range]] = {}
    needs_group_labels: ClassVar[bool] = False
    stackable: ClassVar[bool] = True

    def __init__(self, model: GroupModel, info: TrainInfo):
        super().__init__()
        self.model = model
        self.info = info

    @classmethod
    def defaults(cls) -> dict:
        """Hyperparameters and their defaults, read from ``__init__``'s keyword arguments."""
        params = list(inspect.signature(cls.__init__).parameters.values())[3:]  # self, model, info
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    @classmethod
    def label_tier(cls) -> str:
        """What the method reads in training, the value of ``labels``: "training groups" when it reads training
        group labels (``needs_group_labels``), else "classes". A method that reads validation group labels in
        training overrides this to return "validation groups"."""
        return "training groups" if cls.needs_group_labels else "classes"

    def labels_read(self) -> str:
        """What this run's method reads in training, recorded with its result: :meth:`label_tier`, unless its
        hyperparameters make it read more (jm1's and jtt's ``oracle``)."""
        return self.label_tier()

    @classmethod
    def search_space(cls) -> dict:
        """Everything a random-search trial draws: the shared optimiser settings, then the method's ``space``
        (which overrides a shared entry of the same name)."""
        return {**SHARED_SPACE, **cls.space}

    @classmethod
    def check_hparams(cls, hparams: dict) -> dict:
        """``hparams`` checked against the defaults' types, ``choices`` and ``bounds`` (a
        :class:`~benchmark.core.errors.BenchError` naming the first bad value); returns them typed. A method whose
        hparams constrain each other extends this."""
        return check_settings(cls.name, hparams, cls.defaults(), cls.choices, cls.bounds)

    def stages(self) -> list[Stage]:
        """The stages of training; their epochs (of steps) add up to the run's budget. Default: one stage."""
        return [Stage("train", self.info.epochs)]

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        """Called before a stage (and before a fresh model replaces the old one); may set ``stage.sampler``
        and freeze parameters. Returns JSON-friendly facts to record with the stage (e.g. error-set size)."""
        return {}

    def on_epoch_start(self, epoch: int, data: GroupDataset) -> None:
        """Called before each training epoch (recompute centroids, refresh a frozen head, ...)."""

    def loss(self, data: GroupDataset, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scalar training loss of a batch and a few detached tensors to log."""
        raise NotImplementedError

    def after_step(self, batch: Batch, logs: dict[str, torch.Tensor]) -> None:
        """Called after the optimiser step (e.g. exponentiated-gradient weight updates)."""

    def refit(self, data: GroupDataset) -> Refit | None:
        """Called once after the last stage's last evaluation: a method that refits part of its model on held-out data
        (DFR's head) does so and returns the samples it held out for selection with its predictions there; the
        engine then evaluates the refit model, and that evaluation, its val metrics those of the held-out samples,
        becomes the run's only selectable one. Default: nothing (None)."""
        return None

    def not_applicable(self, data: GroupDataset, last: dict) -> str | None:
        """Called once after training with the run's last evaluation (``last``: its ``val`` and ``test`` metrics): why
        this run measured something other than the method, as one sentence, where a measurement shows that the
        premise of its mechanism failed (MR²'s margins alike across classes; nc-frozen's alignment with no class of two
        attributes); None where it held (the default). The run records it as ``not_applicable`` and keeps its numbers;
        reports print "n/a" in their place and the reason under the table, so it is plain ASCII text."""
        return None

    def predict(self, data: GroupDataset, batch: Batch) -> torch.Tensor:
        """Class logits used for evaluation."""
        return self.model(data, batch)

    @torch.no_grad()
    def encode_split(self, data: GroupDataset, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode latents of a whole split without gradient: (sample indices, z), in the same order.

        The model is put back into training mode afterwards.
        """
        self.model.eval()
        batches = eval_batches(data, split, 512)
        z = torch.cat([self.model.encode(data, batch) for batch in prefetched(data, batches)])
        self.model.train()
        return torch.cat([batch.idx for batch in batches]), z


def per_group_mean(values: torch.Tensor, groups: torch.Tensor, num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``values`` (scalars or rows) per group, 0 for absent groups, and the per-group counts."""
    ones = torch.ones(len(groups), device=values.device, dtype=values.dtype)
    counts = torch.zeros(num_groups, device=values.device, dtype=values.dtype).index_add_(0, groups, ones)
    sums = values.new_zeros((num_groups, *values.shape[1:])).index_add_(0, groups, values)
    return sums / counts.clamp_min(1).view(-1, *[1] * (values.dim() - 1)), counts
