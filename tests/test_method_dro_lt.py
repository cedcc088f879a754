"""dro-lt (docs/methods.md, "dro-lt"): robust loss, radii, centroids and stages against float64 loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import make_info, toy_dataset, vector_dataset

import benchmark.methods.dro_lt  # noqa: F401  (registers "dro-lt")
from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.core.selection import selected
from benchmark.data.batches import make_batches
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Stage
from benchmark.methods.dro_lt import CLASS_BALANCED, stage_epochs
from benchmark.models import GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train
from benchmark.training.setup import make_optimizer

TRAIN_COUNTS = (30, 8, 3, 0)  # class 3 has no training sample (it appears in val/test only)


pytestmark = pytest.mark.usefixtures("float64")


def imbalanced_dataset(train_counts=TRAIN_COUNTS, held_out: int = 4, dim: int = 6) -> GroupDataset:
    """One vector space; class c has train_counts[c] training samples and ``held_out`` val and test samples each."""
    gen = torch.Generator().manual_seed(0)
    y, split = [], []
    for c, n in enumerate(train_counts):
        y += [c] * (n + 2 * held_out)
        split += [0] * n + [1] * held_out + [2] * held_out
    n = len(y)
    y_t = torch.tensor(y)
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64) + y_t[:, None].double()
    attr = torch.arange(n) % 2
    classes = [str(c) for c in range(len(train_counts))]
    split_t = torch.tensor(split)
    return vector_dataset("imbalanced", x, y_t, attr, attr.clone(), split_t, classes, ["a0", "a1"], ["a0", "a1"])


def make_method(data, **hparams):
    info = make_info(data, epochs=15, seed=0)
    torch.manual_seed(0)
    return METHODS.get("dro-lt")(GroupModel(data), info, **hparams)


def batch_of(data, indices):
    order = np.asarray(indices, dtype=np.int64)
    return make_batches(data, order, np.zeros(len(order), dtype=np.int64))[0]


def robust_method(data, **hparams):
    """A method in its robust stage with centroids computed at an epoch start."""
    method = make_method(data, **hparams)
    method.on_stage_start(Stage("robust", 1), data)
    method.on_epoch_start(1, data)
    return method


def mixed_batch(data):
    """Training samples of classes 0, 1 and 2 (class 3 has none)."""
    train = data.indices("train").numpy()
    return batch_of(data, train[[0, 1, 2, 5, 30, 31, 33, 38, 39, 40]])


def reference_robust(z, y, mu, has_centroid, radii, tau, margin=2.0) -> float:
    """Double loop over classes and samples of L_rob = mean_c -mean_{i in c} log p_{c,i}."""
    terms = []
    for c in range(len(mu)):
        members = [i for i in range(len(y)) if y[i] == c]
        if not members or not has_centroid[c]:
            continue
        s = [(-math.dist(mu[c], z[j]) - margin * radii[c] * (y[j] == c)) / tau for j in range(len(y))]
        lse = math.log(sum(math.exp(v) for v in s))
        terms.append(-sum(s[i] - lse for i in members) / len(members))
    return sum(terms) / len(terms)


def latents(method, data, batch):
    z = method.model.encode(data, batch).detach()
    return z.tolist(), batch.y.tolist(), method.centroids.tolist(), method.has_centroid.tolist()


def test_zero_radius_is_plain_centroid_nll():
    data = imbalanced_dataset()
    tau = 0.7
    method = robust_method(data, eps=0.0, lam=0.0, tau=tau)
    batch = mixed_batch(data)
    loss, logs = method.loss(data, batch)
    z, y, mu, _ = latents(method, data, batch)
    per_class = []
    for c in sorted(set(y)):
        denominator = sum(math.exp(-math.dist(mu[c], zj) / tau) for zj in z)
        nll = [-math.log(math.exp(-math.dist(mu[c], z[i]) / tau) / denominator) for i in range(len(y)) if y[i] == c]
        per_class.append(sum(nll) / len(nll))
    assert loss.item() == pytest.approx(sum(per_class) / len(per_class), rel=1e-10)
    assert logs["l_rob"].item() == pytest.approx(loss.item(), rel=1e-12)


def test_loss_is_monotone_in_shared_radius():
    data = imbalanced_dataset()
    batch = mixed_batch(data)
    losses = [robust_method(data, eps=e, eps_mode="shared", lam=0.0).loss(data, batch)[0].item() for e in range(8)]
    assert all(b >= a - 1e-12 for a, b in zip(losses, losses[1:]))
    assert losses[-1] > losses[0] + 1e-3


@pytest.mark.parametrize("eps_mode", ["sqrt_n", "shared"])
def test_robust_loss_matches_double_loop(eps_mode):
    data = imbalanced_dataset()
    eps, tau, lam = 2.0, 1.3, 0.3
    method = robust_method(data, eps=eps, eps_mode=eps_mode, tau=tau, lam=lam)
    counts = [max(n, 1) for n in TRAIN_COUNTS]
    radii = [eps / math.sqrt(n) if eps_mode == "sqrt_n" else eps for n in counts]
    train = data.indices("train").numpy()
    for rows in ([0, 1, 2, 5, 30, 31, 33, 38, 39, 40], [0, 3, 7, 39, 40], [31, 32, 33]):  # all, no class 1, only 1
        batch = batch_of(data, train[rows])
        loss, logs = method.loss(data, batch)
        z, y, mu, has = latents(method, data, batch)
        expected = reference_robust(z, y, mu, has, radii, tau)
        assert logs["l_rob"].item() == pytest.approx(expected, rel=1e-10)
        ce = F.cross_entropy(method.model(data, batch), batch.y).item()
        assert loss.item() == pytest.approx(lam * ce + (1 - lam) * expected, rel=1e-10)
        assert logs["eps_mean"].item() == pytest.approx(sum(radii[:3]) / 3, rel=1e-12)  # classes with training data


def test_reference_code_variant_subtracts_the_radius_once_and_sums_the_losses():
    data = imbalanced_dataset()
    method = robust_method(data, eps=3.0, eps_mode="shared", tau=0.07, margin=1.0, combine="sum")
    batch = mixed_batch(data)
    loss, logs = method.loss(data, batch)
    z, y, mu, has = latents(method, data, batch)
    expected = reference_robust(z, y, mu, has, [3.0] * len(mu), 0.07, margin=1.0)
    assert logs["l_rob"].item() == pytest.approx(expected, rel=1e-9)
    ce = F.cross_entropy(method.model(data, batch), batch.y).item()
    assert loss.item() == pytest.approx(ce + expected, rel=1e-9)


def test_learned_radius_starts_at_sqrt_n_and_its_gradient_shrinks_it():
    data = imbalanced_dataset()
    learned = robust_method(data, eps=5.0, eps_mode="learned", lam=0.0)
    fixed = robust_method(data, eps=5.0, eps_mode="sqrt_n", lam=0.0)
    expected = [5.0 / math.sqrt(max(n, 1)) for n in TRAIN_COUNTS]
    assert F.softplus(learned.rho).tolist() == pytest.approx(expected, rel=1e-10)
    batch = mixed_batch(data)
    loss, _ = learned.loss(data, batch)
    assert loss.item() == pytest.approx(fixed.loss(data, batch)[0].item(), rel=1e-10)
    loss.backward()
    grad = learned.rho.grad.tolist()
    assert all(g >= 0 for g in grad) and max(grad[:3]) > 0 and grad[3] == 0  # class 3 is never in a batch


def test_centroids_are_class_means_of_eval_features():
    data = imbalanced_dataset()
    method = make_method(data)
    method.on_stage_start(Stage("warmup", 1), data)
    method.on_epoch_start(1, data)
    assert not method.has_centroid.any()  # no centroids needed (nor computed) in warmup
    method.on_stage_start(Stage("robust", 1), data)
    with torch.no_grad():
        for p in method.model.parameters():
            p.add_(0.1)  # centroids must come from the current weights
    method.on_epoch_start(2, data)
    assert method.model.training
    train, y = data.indices("train").tolist(), data.y.tolist()
    method.model.eval()
    with torch.no_grad():
        for c in range(4):
            members = [i for i in train if y[i] == c]
            if not members:
                assert not method.has_centroid[c] and method.centroids[c].abs().sum().item() == 0
                continue
            z = [method.model.encode(data, batch_of(data, [i]))[0] for i in members]
            assert method.has_centroid[c]
            torch.testing.assert_close(method.centroids[c], sum(z) / len(z), rtol=1e-10, atol=1e-12)


def test_classifier_stage_freezes_encoders_and_balances_classes():
    data = imbalanced_dataset()
    method = make_method(data, eps_mode="learned")
    stage = Stage("classifier", 1)
    method.on_stage_start(stage, data)
    assert stage.sampler is CLASS_BALANCED
    trainable = {id(p) for p in method.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in method.model.head.parameters()}
    frozen = {name: p.clone() for name, p in method.named_parameters() if not name.startswith("model.head")}
    head = [p.clone() for p in method.model.head.parameters()]
    optimizer = make_optimizer(TrainConfig(), [p for p in method.parameters() if p.requires_grad])
    sampler = stage.sampler(data, data.indices("train").numpy(), 8)
    for batch in sampler.epoch(np.random.default_rng(0)):
        loss, _ = method.loss(data, batch)
        assert loss.item() == pytest.approx(F.cross_entropy(method.model(data, batch), batch.y).item(), rel=1e-12)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert "rho" in frozen and len(frozen) > 1
    for name, p in method.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), name
    assert all(not torch.equal(p, q) for p, q in zip(method.model.head.parameters(), head))


def test_warmup_stage_loss_is_cross_entropy():
    data = imbalanced_dataset()
    method = make_method(data, lam=0.0)
    method.on_stage_start(Stage("warmup", 1), data)
    batch = mixed_batch(data)
    loss, _ = method.loss(data, batch)
    assert loss.item() == F.cross_entropy(method.model(data, batch), batch.y).item()
    loss.backward()
    assert all(p.grad is not None for p in method.model.encoders.parameters())


def test_class_balanced_sampler_draws_classes_uniformly_from_training_set():
    data = imbalanced_dataset(train_counts=(300, 30, 6), held_out=20)
    train = data.indices("train").numpy()
    sampler = CLASS_BALANCED(data, train, 50)
    rng = np.random.default_rng(0)
    drawn = np.concatenate([b.idx.numpy() for _ in range(20) for b in sampler.epoch(rng)])
    assert len(drawn) == 20 * len(train)
    assert np.isin(drawn, train).all()
    freq = np.bincount(data.y_cpu[drawn], minlength=3) / len(drawn)
    assert freq == pytest.approx([1 / 3] * 3, abs=0.02)
    assert len(np.unique(drawn[data.y_cpu[drawn] == 2])) == 6  # every tail sample gets drawn


def test_stage_budget():
    assert stage_epochs(15, 3, 2) == (3, 10, 2)
    assert stage_epochs(4, 3, 2) == (2, 1, 1)
    assert stage_epochs(3, 3, 2) == (1, 1, 1)
    assert stage_epochs(4, 5, 5) == (2, 1, 1)
    assert stage_epochs(2, 0, 4) == (0, 1, 1)
    with pytest.raises(ValueError, match="at least 3 epochs"):
        stage_epochs(2, 3, 2)
    method = make_method(imbalanced_dataset(), warmup_epochs=0)
    assert [(s.name, s.epochs) for s in method.stages()] == [("robust", 13), ("classifier", 2)]


@pytest.mark.parametrize(
    "bad",
    [
        {"eps": -1.0},
        {"eps": 0.0, "eps_mode": "learned"},
        {"lam": 1.5},
        {"tau": 0.0},
        {"eps_mode": "x"},
        {"combine": "x"},
        {"margin": -1.0},
    ],
)
def test_check_hparams_rejects_bad_values(bad):
    cls = METHODS.get("dro-lt")
    cls.check_hparams(cls.defaults())
    with pytest.raises(BenchError, match="bad value for dro-lt"):
        cls.check_hparams({**cls.defaults(), **bad})


def test_short_training_on_toy_dataset():
    torch.set_default_dtype(torch.float32)
    spec = RunSpec("toy", {}, "dro-lt", {}, 0, TrainConfig(epochs=4, batch_size=8))
    records = []
    result = selected(train(spec, toy_dataset(), records.append), "val-wga")
    assert [s["name"] for s in result["stages"]] == ["warmup", "robust", "classifier"]
    assert [s["epochs"] for s in result["stages"]] == [2, 1, 1]
    for split in ("val", "test"):
        assert set(result[split]["groups"]) == {"vec0", "img1", "seq2"}
        assert all(v is not None and math.isfinite(v) for v in result[split]["groups"].values())
        assert math.isfinite(result[split]["wga"])
    assert all(math.isfinite(r["train_loss"]) for r in records)
    robust = [r for r in records if r["stage"] == "robust"]
    assert robust and all(math.isfinite(r["logs"]["l_rob"]) and r["logs"]["eps_mean"] > 0 for r in robust)
    assert METHODS.get("dro-lt").defaults() == {
        "eps": 50.0,
        "eps_mode": "sqrt_n",
        "lam": 0.5,
        "tau": 1.0,
        "margin": 2.0,
        "combine": "convex",
        "warmup_epochs": 3,
        "cls_epochs": 2,
    }


def selected_robust_start(seed: int) -> int:
    """Train dro-lt on the toy data (robust epochs 2-5) and check that the classifier stage restored the whole
    method state of the robust stage's selected evaluation; returns that epoch."""
    from benchmark.core.selection import selection_score
    from benchmark.runs.spec import Execution
    from benchmark.training.engine import AloneSteps, Engine
    from benchmark.training.execution import run_settings
    from benchmark.training.run_training import RunTraining, Selection

    stages = {"warmup_epochs": 1, "cls_epochs": 1}
    spec = RunSpec("toy", {}, "dro-lt", stages, seed, TrainConfig(epochs=6, batch_size=8, lr=0.05))
    snapshots, outcome = {}, {}

    def on_eval(record):
        encoders = run.method.model.encoders.state_dict()
        snapshots[record["epoch"]] = (record, {name: value.clone() for name, value in encoders.items()})

    run = RunTraining(spec, toy_dataset(), on_eval, Selection("val-wga"))
    with run_settings(Execution(device="cpu")) as settings:
        Engine({0: run}, AloneSteps(), outcome.__setitem__, settings).train()
    stages = {stage["name"]: stage for stage in outcome[0]["stages"]}
    robust = [snapshots[epoch][0] for epoch in (2, 3, 4, 5)]
    best = max(robust, key=lambda record: selection_score(record, "val-wga"))  # the first of equal scores
    assert stages["robust"]["selected_epoch"] == best["epoch"] == stages["classifier"]["starts_from_epoch"]
    assert stages["classifier"]["selected_epoch"] == 6
    final = run.method.model.encoders.state_dict()  # frozen in the classifier stage
    assert all(torch.equal(final[name], value) for name, value in snapshots[best["epoch"]][1].items())
    if best["epoch"] != 5:  # the last robust state differs from the selected one
        assert any(not torch.equal(final[name], value) for name, value in snapshots[5][1].items())
    return best["epoch"]


def test_the_classifier_stage_starts_from_the_robust_stage_evaluation_the_rule_selects():
    """Each stage records its selected evaluation; dro-lt's classifier stage starts from the robust stage's selected
    evaluation, not its last state (some seed selects an earlier one, so the restore is not a no-op)."""
    torch.set_default_dtype(torch.float32)
    epochs = [selected_robust_start(seed) for seed in range(4)]
    assert any(epoch != 5 for epoch in epochs), epochs
