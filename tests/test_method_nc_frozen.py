"""nc-frozen (Lu et al. 2024): frozen majority-mean head, group CE and mean alignment, against float64 loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_info, toy_dataset

import benchmark.methods.nc_frozen  # noqa: F401  (registers the method)
from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.core.selection import selected
from benchmark.data.batches import Batch, eval_batches
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.models import GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train

# training counts per (class, attribute) cell: majority attributes 1, 2, 0 (class 2 ties 0 and 2 -> 0)
TRAIN_COUNTS = [[3, 9, 2], [1, 4, 7], [6, 0, 6]]


pytestmark = pytest.mark.usefixtures("float64")


def cell_dataset(shared_rows: bool = False, seed: int = 0) -> GroupDataset:
    """One vector space; groups are the (class, attribute) cells; attributes vary within the space.

    With ``shared_rows`` every sample of class y reads the same feature row, so all cells of a class
    have identical latent means.
    """
    gen = torch.Generator().manual_seed(seed)
    y, a, split = [], [], []
    for c, row in enumerate(TRAIN_COUNTS):
        for attr, n in enumerate(row):
            y += [c] * (n + 2)  # two more per cell (even empty-in-train ones) for val and test
            a += [attr] * (n + 2)
            split += [0] * n + [1, 2]
    y_t, a_t = torch.tensor(y), torch.tensor(a)
    n = len(y)
    x = torch.randn(n, 5, generator=gen, dtype=torch.float64)
    return GroupDataset(
        name="cells",
        spaces=[FeatureSpace("vec", "vector", x)],
        space=torch.zeros(n, dtype=torch.long),
        row=y_t.clone() if shared_rows else torch.arange(n),
        y=y_t,
        a=a_t,
        g=y_t * 3 + a_t,
        split_code=torch.tensor(split),
        class_names=["c0", "c1", "c2"],
        attr_names=["a0", "a1", "a2"],
        group_names=[f"c{c}a{t}" for c in range(3) for t in range(3)],
    )


def make_method(data: GroupDataset, **hparams):
    info = make_info(data, epochs=1, seed=0)
    torch.manual_seed(0)
    return METHODS.get("nc-frozen")(GroupModel(data, k=8), info, **hparams)


def train_latents(method, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latents, classes and attributes of the training set, one eval-mode call."""
    batch = eval_batches(data, "train", 10_000)[0]
    with torch.no_grad():
        z = method.model.encode(data, batch)
    return z.numpy(), batch.y.numpy(), batch.a.numpy()


def reference_head(method, data) -> np.ndarray:
    """Normalised majority-cell training means, by explicit loops over samples."""
    z, y, a = train_latents(method, data)
    rows = []
    for c in range(3):
        counts = [sum(1 for i in range(len(y)) if y[i] == c and a[i] == t) for t in range(3)]
        best = counts.index(max(counts))
        mean = np.zeros(z.shape[1])
        for i in range(len(y)):
            if y[i] == c and a[i] == best:
                mean += z[i] / counts[best]
        rows.append(mean / math.sqrt(sum(v * v for v in mean)))
    return np.array(rows)


def test_majority_cell_is_the_most_frequent_training_attribute():
    data = cell_dataset()
    method = make_method(data)
    method.on_stage_start(method.stages()[0], data)
    method.on_epoch_start(1, data)
    assert method.majority.tolist() == [1, 2, 0]  # class 2: tie between 0 and 2 -> lowest
    assert method.num_attrs == 3


def test_head_is_unit_norm_majority_means_and_stays_frozen():
    data = cell_dataset()
    method = make_method(data)
    method.train()
    method.on_stage_start(method.stages()[0], data)
    method.on_epoch_start(1, data)
    assert method.model.training  # train mode restored
    head = method.model.head
    np.testing.assert_allclose(head.weight.detach().numpy(), reference_head(method, data), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(head.weight.norm(dim=1).detach().numpy(), 1.0, rtol=1e-12)
    assert head.bias.abs().max().item() == 0.0
    assert not any(p.requires_grad for p in head.parameters())

    before = head.weight.detach().clone()
    encoder_before = [p.detach().clone() for p in method.model.encoders.parameters()]
    params = [p for p in method.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2, weight_decay=0.1)
    for batch in eval_batches(data, "train", 8):  # one epoch of steps
        loss, _ = method.loss(data, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.equal(head.weight, before) and head.bias.abs().max().item() == 0.0
    assert any(not torch.equal(p, q) for p, q in zip(method.model.encoders.parameters(), encoder_before))
    method.on_epoch_start(2, data)  # the next epoch start re-derives the head from the moved features
    assert not torch.allclose(head.weight, before)
    np.testing.assert_allclose(head.weight.detach().numpy(), reference_head(method, data), rtol=1e-12, atol=1e-14)


def sub_batch(data: GroupDataset, keep: torch.Tensor) -> Batch:
    idx = data.indices("train")[keep]
    return Batch(idx, (len(idx),), data.y[idx], data.a[idx], data.g[idx])


def reference_losses(method, data, batch) -> tuple[float, float]:
    """L_GCE and L_align by explicit per-cell loops (log-softmax by hand)."""
    with torch.no_grad():
        z = method.model.encode(data, batch).numpy()
    w = method.model.head.weight.detach().numpy()
    y, a = batch.y.numpy(), batch.a.numpy()
    logits = z @ w.T
    ce = [math.log(sum(math.exp(v) for v in logits[i])) - logits[i, y[i]] for i in range(len(y))]
    majority = method.majority.tolist()
    gce, align = 0.0, 0.0
    for c in range(3):
        maj = [i for i in range(len(y)) if y[i] == c and a[i] == majority[c]]
        for t in range(3):
            members = [i for i in range(len(y)) if y[i] == c and a[i] == t]
            if not members:
                continue
            gce += sum(ce[i] for i in members) / len(members)
            if t != majority[c] and maj:
                diff = z[members].mean(0) - z[maj].mean(0)
                align += float(np.mean(diff**2))
    return gce, align


def test_losses_match_per_cell_loops():
    data = cell_dataset()
    method = make_method(data, lambda_align=0.5)
    method.on_stage_start(method.stages()[0], data)
    method.on_epoch_start(1, data)
    n = len(data.indices("train"))
    y, a = data.y[data.indices("train")], data.a[data.indices("train")]
    keep_all = torch.ones(n, dtype=torch.bool)
    no_majority_c0 = ~((y == 0) & (a == 1))  # class 0 loses its majority cell: no alignment term for it
    some = torch.rand(n, generator=torch.Generator().manual_seed(3)) < 0.5
    for keep in (keep_all, no_majority_c0, some):
        batch = sub_batch(data, keep)
        loss, logs = method.loss(data, batch)
        gce, align = reference_losses(method, data, batch)
        assert logs["gce"].item() == pytest.approx(gce, rel=1e-12)
        assert logs["align"].item() == pytest.approx(align, rel=1e-12)
        assert loss.item() == pytest.approx(gce + 0.5 * align, rel=1e-12)
        assert align > 0
    full = method.loss(data, sub_batch(data, keep_all))[1]["align"].item()
    assert method.loss(data, sub_batch(data, no_majority_c0))[1]["align"].item() < full


def test_align_is_zero_when_cell_means_coincide():
    data = cell_dataset(shared_rows=True)
    method = make_method(data)
    method.on_stage_start(method.stages()[0], data)
    method.on_epoch_start(1, data)
    loss, logs = method.loss(data, eval_batches(data, "train", 10_000)[0])
    assert logs["align"].item() == pytest.approx(0.0, abs=1e-14)
    assert loss.item() == pytest.approx(logs["gce"].item(), rel=1e-12) and logs["gce"].item() > 0


def test_negative_lambda_is_rejected():
    with pytest.raises(BenchError, match="lambda_align"):
        METHODS.get("nc-frozen").check_hparams({"lambda_align": -1.0})
    assert METHODS.get("nc-frozen").defaults() == {"lambda_align": 1.0}
    assert METHODS.get("nc-frozen").needs_group_labels


@pytest.mark.parametrize("make_data", [toy_dataset, cell_dataset])
def test_trains_end_to_end(make_data):
    torch.set_default_dtype(torch.float32)
    data = make_data()
    for space in data.spaces:
        space.x = space.x.float()
    spec = RunSpec("toy", {}, "nc-frozen", {}, 0, TrainConfig(epochs=2, batch_size=8))
    records = []
    result = selected(train(spec, data, records.append), "val-wga")
    assert len(records) == 2 and all(math.isfinite(r["train_loss"]) for r in records)
    assert set(records[-1]["logs"]) == {"gce", "align"}
    assert result["not_applicable"] is None, "the toy classes have several attributes: a run records that it applied"
    for split in ("val", "test"):
        assert math.isfinite(result[split]["wga"]) and math.isfinite(result[split]["acc"])
        assert set(result[split]["groups"]) == set(data.group_names)


def test_not_applicable_only_where_no_class_has_two_training_attributes():
    data = cell_dataset()
    method = make_method(data)
    method.on_stage_start(method.stages()[0], data)
    assert method.not_applicable(data, {}) is None
    data.a = data.y.clone()  # digits-lt's case: the attribute is the class
    method = make_method(data)
    method.on_stage_start(method.stages()[0], data)
    assert "alignment term is identically 0" in method.not_applicable(data, {})
