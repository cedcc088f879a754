"""mr2 (docs/methods.md, "mr2"): margins γ, EMAs, logit and representation losses against float64 loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_info, toy_dataset

import benchmark.methods.mr2  # noqa: F401  (registers "mr2")
from benchmark.core.registry import METHODS
from benchmark.core.selection import selected
from benchmark.data.batches import make_batches
from benchmark.models import GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train

pytestmark = pytest.mark.usefixtures("float64")


def make_mr2(data, **hparams):
    info = make_info(data, epochs=1, seed=0)
    torch.manual_seed(0)
    return METHODS.get("mr2")(GroupModel(data), info, **hparams)


def batch_of(data, indices) -> object:
    order = np.asarray(indices, dtype=np.int64)
    return make_batches(data, order, np.zeros(len(order), dtype=np.int64))[0]


def equal_statistics_batch(data):
    """Samples i, i+1, i+2 (classes 0, 1, 2 of one feature space) share an input: every class sees the same z's."""
    for space in data.spaces:
        n = len(space.x)
        space.x = space.x[torch.arange(n) // 3 * 3]
    rows = data.row.numpy()
    return batch_of(data, [i for i in range(len(data.y)) if rows[i] // 3 * 3 + 2 < len(data.spaces[data.space[i]].x)])


def representation_reference(z: np.ndarray, y: np.ndarray, s_bar: float) -> float:
    """Explicit double loop over pairs; samples without a same-class partner are skipped."""
    values = []
    for i in range(len(y)):
        total, partners = 1.0, 0
        for j in range(len(y)):
            if j != i and y[j] == y[i]:
                total += math.exp(float(((z[i] - z[j]) ** 2).sum()) - 2 * s_bar)
                partners += 1
        if partners:
            values.append(math.log(total))
    return float(np.mean(values)) if values else 0.0


def test_equal_class_statistics_give_gamma_c_bar():
    data = toy_dataset(dtype=torch.float64)
    method = make_mr2(data, c_bar=2.5)
    batch = equal_statistics_batch(data)
    assert torch.bincount(batch.y).tolist() == [len(batch) // 3] * 3
    _, logs = method.loss(data, batch)
    assert torch.allclose(logs["gamma"], torch.full((3,), 2.5), rtol=1e-12, atol=0)
    # K counts seen classes only: two seen with equal statistics, one unseen -> all c̄.
    method.mean_sq.copy_(torch.tensor([4.0, 4.0, 100.0]))
    method.spread.copy_(torch.tensor([1.0, 1.0, 7.0]))
    method.seen.copy_(torch.tensor([True, True, False]))
    assert method.gamma().tolist() == pytest.approx([2.5, 2.5, 2.5], rel=1e-12)
    # unequal statistics: γ follows (m+v)^{1/3} and averages to c̄ over seen classes
    method.seen.fill_(True)
    gamma = method.gamma()
    assert gamma.mean().item() == pytest.approx(2.5, rel=1e-12) and gamma[2] > gamma[0]


def test_c_bar_one_lambda_zero_is_plain_cross_entropy():
    data = toy_dataset(dtype=torch.float64)
    method = make_mr2(data, c_bar=1.0, lam=0.0)
    batch = equal_statistics_batch(data)
    loss, _ = method.loss(data, batch)
    expected = F.cross_entropy(method.model(data, batch), batch.y)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)


def test_gamma_ema_and_loss_match_loop_reference():
    data = toy_dataset(dtype=torch.float64)
    beta, c_bar, lam = 0.9, 1.3, 0.05
    method = make_mr2(data, c_bar=c_bar, lam=lam, beta=beta)
    train_idx = data.indices("train").numpy()
    y_all = data.y.numpy()
    first = batch_of(data, [i for i in train_idx if y_all[i] != 2][:12])  # class 2 absent
    second = batch_of(data, train_idx[5:25])
    assert set(second.y.tolist()) == {0, 1, 2}
    mean_sq, spread = {}, {}
    for step, batch in enumerate((first, second)):
        loss, logs = method.loss(data, batch)
        with torch.no_grad():
            z = method.model.encode(data, batch).numpy()
            logits = method.model(data, batch).numpy()
        y = batch.y.numpy()
        for k in range(3):
            if not (y == k).any():
                continue
            mu = z[y == k].mean(0)
            m, v = float(mu @ mu), float(((z[y == k] - mu) ** 2).sum(1).mean())
            if k in mean_sq:
                mean_sq[k], spread[k] = beta * mean_sq[k] + (1 - beta) * m, beta * spread[k] + (1 - beta) * v
            else:
                mean_sq[k], spread[k] = m, v
        if step == 0:
            assert 2 not in mean_sq and method.seen.tolist() == [True, True, False]
        seen = sorted(mean_sq)
        roots = {k: (mean_sq[k] + spread[k]) ** (1 / 3) for k in seen}
        gamma = [c_bar * len(seen) * roots[k] / sum(roots.values()) if k in roots else c_bar for k in range(3)]
        assert logs["gamma"].tolist() == pytest.approx(gamma, rel=1e-12)
        assert method.mean_sq[seen].tolist() == pytest.approx([mean_sq[k] for k in seen], rel=1e-12)
        assert method.spread[seen].tolist() == pytest.approx([spread[k] for k in seen], rel=1e-12)
        s_bar = float(np.mean([spread[k] for k in seen]))
        assert logs["s_bar"].item() == pytest.approx(s_bar, rel=1e-12)
        logit_loss = 0.0
        for i in range(len(y)):
            scaled = logits[i] / gamma[y[i]]
            logit_loss += (math.log(np.exp(scaled - scaled.max()).sum()) + scaled.max() - scaled[y[i]]) / len(y)
        expected = logit_loss + lam * representation_reference(z, y, s_bar)
        assert loss.item() == pytest.approx(expected, rel=1e-10)


def test_representation_loss_matches_pair_loop_and_skips_singletons():
    data = toy_dataset(dtype=torch.float64)
    method = make_mr2(data)
    gen = torch.Generator().manual_seed(1)
    z = 0.5 * torch.randn(10, 4, generator=gen)
    y = torch.tensor([0, 1, 0, 2, 1, 0, 1, 3, 1, 0])  # classes 2 and 3 are singletons
    s_bar = torch.tensor(0.7)
    got = method.representation_loss(z, y, s_bar).item()
    assert got == pytest.approx(representation_reference(z.numpy(), y.numpy(), 0.7), rel=1e-12)
    partnered = ~torch.isin(y, torch.tensor([2, 3]))
    assert method.representation_loss(z[partnered], y[partnered], s_bar).item() == pytest.approx(got, rel=1e-12)
    assert method.representation_loss(z[:4], torch.arange(4), s_bar).item() == 0.0
    big = (30 * z).requires_grad_()  # distances in the thousands: logsumexp keeps loss and gradient finite
    method.representation_loss(big, y, s_bar).backward()
    assert torch.isfinite(big.grad).all()


def test_short_training_on_toy_dataset():
    torch.set_default_dtype(torch.float32)
    spec = RunSpec("toy", {}, "mr2", {}, 0, TrainConfig(epochs=2, batch_size=8))
    records = []
    result = selected(train(spec, toy_dataset(), records.append), "val-wga")
    for split in ("val", "test"):
        assert all(v is not None and math.isfinite(v) for v in result[split]["groups"].values())
        assert set(result[split]["groups"]) == {"vec0", "img1", "seq2"}
        assert math.isfinite(result[split]["wga"])
    assert all(math.isfinite(r["train_loss"]) for r in records)
    gamma = records[-1]["logs"]["gamma"]
    assert len(gamma) == 3 and sum(gamma) / 3 == pytest.approx(1.0, rel=1e-5)
    assert METHODS.get("mr2").defaults() == {"c_bar": 1.0, "lam": 0.01, "beta": 0.9, "eps": 1e-8}
    assert not METHODS.get("mr2").needs_group_labels


def test_not_applicable_where_the_margins_are_alike_or_favour_the_easier_classes():
    data = toy_dataset(dtype=torch.float64)
    method = make_mr2(data)
    method.seen.fill_(True)
    method.spread.zero_()

    def verdict(mean_sq: list[float], val_accuracy: list[float]):
        method.mean_sq.copy_(torch.tensor(mean_sq))
        return method.not_applicable(data, {"val": {"classes": dict(zip("abc", val_accuracy))}})

    harder = [90.0, 80.0, 70.0]  # classes 0, 1, 2 from easiest to hardest
    assert "did not act" in verdict([1.0, 1.0, 1.15], harder), "largest γ / smallest = 1.15^(1/3) = 1.048 < 1.05"
    assert verdict([1.0, 1.0, 1.17], harder) is None, "1.17^(1/3) = 1.054: the hardest class has the largest margin"
    assert verdict([1.0, 2.0, 4.0], harder) is None
    assert "premise failed" in verdict([4.0, 2.0, 1.0], harder), "the easiest class has the largest margin"
    assert "-1.00" in verdict([4.0, 2.0, 1.0], harder)
    assert verdict([1.0, 2.0, 4.0], [80.0, 80.0, 80.0]) is None, "classes alike in error: no evidence either way"
