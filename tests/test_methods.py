"""Sanity properties of erm and groupdro (docs/methods.md, "erm", "groupdro"), checked against float64 references."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_info, toy_dataset

from benchmark.core.registry import METHODS
from benchmark.data.batches import eval_batches
from benchmark.methods.base import per_group_mean
from benchmark.models import GroupModel


def make_method(name: str, data, **hparams):
    torch.manual_seed(0)
    return METHODS.get(name)(GroupModel(data), make_info(data), **hparams)


pytestmark = pytest.mark.usefixtures("float64")


def whole_train_batch(data):
    return eval_batches(data, "train", 10_000)[0]


def per_sample_losses(method, data, batch) -> torch.Tensor:
    return F.cross_entropy(method.model(data, batch), batch.y, reduction="none").detach()


def test_per_group_mean_matches_loop():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0], dtype=torch.float64)
    groups = torch.tensor([0, 0, 2, 2, 2])
    means, counts = per_group_mean(values, groups, 4)
    assert means.tolist() == [1.5, 0.0, 17 / 3, 0.0]
    assert counts.tolist() == [2, 0, 3, 0]


def test_groupdro_zero_step_is_group_balanced_average():
    data = toy_dataset(dtype=torch.float64)
    method = make_method("groupdro", data, step_size=0.0)
    batch = whole_train_batch(data)
    loss, _ = method.loss(data, batch)
    losses = per_sample_losses(method, data, batch).numpy()
    groups = batch.g.numpy()
    expected = np.mean([losses[groups == g].mean() for g in range(data.num_groups)])
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_groupdro_one_step_from_uniform_is_softmax_of_adjusted_losses():
    data = toy_dataset(dtype=torch.float64)
    eta, adjustment = 0.7, 2.0
    method = make_method("groupdro", data, step_size=eta, adjustment=adjustment)
    batch = whole_train_batch(data)
    keep = batch.g != 1  # group 1 absent from this batch
    sub = type(batch)(
        batch.idx[keep], (batch.space_sizes[0], 0, batch.space_sizes[2]), batch.y[keep], batch.a[keep], batch.g[keep]
    )
    loss, logs = method.loss(data, sub)
    losses, groups = per_sample_losses(method, data, sub).numpy(), sub.g.numpy()
    counts = data.group_counts("train").numpy().astype(np.float64)
    a = np.array([losses[groups == g].mean() + adjustment / np.sqrt(counts[g]) if g != 1 else 0.0 for g in range(3)])
    expected_q = np.exp(eta * a) / np.exp(eta * a).sum()  # log q starts uniform; group 1 gets no update
    assert np.allclose(logs["q"].numpy(), expected_q, rtol=1e-12, atol=0)
    group_means = np.array([losses[groups == g].mean() if g != 1 else 0.0 for g in range(3)])
    assert loss.item() == pytest.approx(float(expected_q @ group_means), rel=1e-12)


def test_groupdro_weights_move_toward_the_worst_group():
    data = toy_dataset(dtype=torch.float64)
    method = make_method("groupdro", data, step_size=0.5)
    batch = whole_train_batch(data)
    losses = per_sample_losses(method, data, batch)
    worst = int(per_group_mean(losses, batch.g, 3)[0].argmax())
    for _ in range(3):
        _, logs = method.loss(data, batch)
    assert int(logs["q"].argmax()) == worst


def test_erm_equals_groupdro_with_one_group():
    data = toy_dataset(dtype=torch.float64)
    data = dataclasses.replace(data, g=torch.zeros_like(data.g), group_names=["all"])
    erm, dro = make_method("erm", data), make_method("groupdro", data, step_size=0.3, adjustment=1.0)
    batch = whole_train_batch(data)
    assert erm.loss(data, batch)[0].item() == pytest.approx(dro.loss(data, batch)[0].item(), rel=1e-12)


def test_method_defaults_come_from_the_signature():
    assert METHODS.get("groupdro").defaults() == {"step_size": 0.01, "adjustment": 0.0, "adjust_absent": False}
    assert METHODS.get("erm").defaults() == {}
    assert METHODS.get("groupdro").needs_group_labels and not METHODS.get("erm").needs_group_labels
