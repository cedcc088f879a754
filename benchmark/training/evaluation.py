"""Evaluation of a method on fixed batches: group metrics of its predictions and the latents' live units."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.core.metrics import class_metrics, group_metrics
from benchmark.data.batches import Batch, eval_batches
from benchmark.data.core import GroupDataset
from benchmark.data.images import prefetched
from benchmark.methods.base import Method

LIVE_SHARE = 0.01  # a latent unit is live for a group when it is non-zero on at least 1% of the group's samples


def logits_and_latents(method: Method, data: GroupDataset, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """The method's class logits and the shared model's latents z of a batch (one encoder pass unless the
    method overrides :meth:`~benchmark.methods.base.Method.predict`)."""
    if type(method).predict is Method.predict:
        z = method.model.encode(data, batch)
        return method.model.head(z), z
    return method.predict(data, batch), method.model.encode(data, batch)


def live_units(active: torch.Tensor, counts: torch.Tensor, group_names: list[str]) -> dict[str, float | None]:
    """Per group, the fraction of latent units that are non-zero on at least :data:`LIVE_SHARE` of the group's
    samples, from ``active`` (groups × k: samples on which each unit is non-zero) and ``counts`` (samples per
    group); None for a group without samples."""
    live = (active >= LIVE_SHARE * counts[:, None]) & (active > 0)
    share = live.double().mean(1).tolist()
    return {name: (s if n > 0 else None) for name, s, n in zip(group_names, share, counts.tolist())}


def split_metrics(data: GroupDataset, correct, total, class_correct, class_total) -> dict:
    """A split's metrics from per-group and per-class counts of correct predictions and samples: the group
    metrics (:func:`~benchmark.core.metrics.group_metrics`) with the class-wise ``wca`` and ``classes``."""
    metrics = group_metrics(correct.tolist(), total.tolist(), data.group_names, data.summaries)
    return {**metrics, **class_metrics(class_correct.tolist(), class_total.tolist(), data.class_names)}


def prediction_metrics(data: GroupDataset, index, predicted) -> dict:
    """:func:`split_metrics` of predicted classes (``predicted``, integers) of the samples ``index``."""
    index, predicted = torch.as_tensor(np.asarray(index)), torch.as_tensor(np.asarray(predicted)).reshape(-1)
    groups, classes = data.g.cpu()[index], data.y.cpu()[index]
    hit = (predicted == classes).double()
    correct = torch.zeros(data.num_groups, dtype=torch.float64).index_add_(0, groups, hit)
    total = torch.bincount(groups, minlength=data.num_groups).double()
    class_correct = torch.zeros(data.num_classes, dtype=torch.float64).index_add_(0, classes, hit)
    class_total = torch.bincount(classes, minlength=data.num_classes).double()
    return split_metrics(data, correct, total, class_correct, class_total)


@torch.no_grad()
def evaluate(method: Method, data: GroupDataset, batches: list[Batch], latents: bool = False) -> dict:
    """Group and class metrics of the method's predictions over fixed batches (one host sync at the end); with
    ``latents`` also ``live_units`` per group (:func:`live_units`)."""
    method.eval()
    correct = torch.zeros(data.num_groups, device=data.device)
    total = torch.zeros(data.num_groups, device=data.device)
    class_correct = torch.zeros(data.num_classes, device=data.device)
    class_total = torch.zeros(data.num_classes, device=data.device)
    active = torch.zeros(data.num_groups, method.model.k, device=data.device) if latents else None
    for batch in prefetched(data, batches):
        if latents:
            logits, z = logits_and_latents(method, data, batch)
            active.index_add_(0, batch.g, (z != 0).to(active.dtype))
        else:
            logits = method.predict(data, batch)
        hit = (logits.argmax(1) == batch.y).to(correct.dtype)
        correct.index_add_(0, batch.g, hit)
        total.index_add_(0, batch.g, torch.ones_like(hit))
        class_correct.index_add_(0, batch.y, hit)
        class_total.index_add_(0, batch.y, torch.ones_like(hit))
    metrics = split_metrics(data, correct, total, class_correct, class_total)
    if latents:
        metrics["live_units"] = live_units(active.cpu(), total.cpu(), data.group_names)
    return metrics


@torch.no_grad()
def predicted_classes(method: Method, data: GroupDataset, split: str, batch_size: int = 2048) -> torch.Tensor:
    """The method's predicted class of every sample of ``split``, in the order of ``data.split(split)`` (what
    :func:`benchmark.api.evaluate` scores)."""
    method.eval()
    batches = eval_batches(data, split, batch_size)
    predicted = torch.cat([method.predict(data, batch).argmax(1) for batch in prefetched(data, batches)])
    position = torch.full((len(data.y),), -1, dtype=torch.long)
    position[torch.as_tensor(data.indices_cpu(split))] = torch.arange(len(data.indices_cpu(split)))
    order = position[torch.cat([batch.idx for batch in batches]).cpu()]
    return torch.empty_like(predicted).index_copy_(0, order.to(predicted.device), predicted).cpu()
