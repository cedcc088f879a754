"""jm1 (docs/methods.md, "jm1"): partner sampling, α schedule, latent/input mixing and the oracle partition."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from conftest import make_info, needs_torchvision, toy_dataset
from scipy import stats

import benchmark.methods.jm1  # noqa: F401  (registers "jm1")
from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.core.selection import selected
from benchmark.data.batches import ShuffleSampler
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.methods.jm1 import PartnerSampler
from benchmark.models import GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train


def two_space_dataset(n: tuple[int, int] = (36, 24), num_classes: int = 3) -> GroupDataset:
    """Two feature spaces (vector, image), all samples in train; group = space, class = i % C."""
    gen = torch.Generator().manual_seed(1)
    spaces = [
        FeatureSpace("vec", "vector", torch.randn(n[0], 4, generator=gen, dtype=torch.float64)),
        FeatureSpace("img", "image", torch.randn(n[1], 1, 4, 4, generator=gen, dtype=torch.float64)),
    ]
    space = torch.tensor([0] * n[0] + [1] * n[1])
    y = torch.tensor([i % num_classes for i in range(n[0])] + [i % num_classes for i in range(n[1])])
    return GroupDataset(
        name="two",
        spaces=spaces,
        space=space,
        row=torch.cat([torch.arange(n[0]), torch.arange(n[1])]),
        y=y,
        a=space.clone(),
        g=space.clone(),
        split_code=torch.zeros(len(y), dtype=torch.int64),
        class_names=[str(c) for c in range(num_classes)],
        attr_names=["vec", "img"],
        group_names=["vec", "img"],
    )


def make_jm1(data: GroupDataset, epochs: int = 4, **hparams):
    info = make_info(data, epochs=epochs, seed=0)
    torch.manual_seed(0)
    return METHODS.get("jm1")(GroupModel(data), info, **hparams)


def some_partition(data: GroupDataset, every_class: bool) -> np.ndarray:
    """P = every fourth sample (every class of both spaces); without ``every_class``, class 2 lies wholly in P̄."""
    part = np.arange(len(data.y)) % 4 == 0
    return part if every_class else part & (data.y_cpu != 2)


def partner_ids(batch) -> torch.Tensor:
    return batch.attached["partner"].idx[batch.extra["partner_pos"]]


@pytest.mark.parametrize("every_class", [True, False])
@pytest.mark.usefixtures("float64")
def test_partners_share_the_class_and_come_from_the_other_partition(every_class):
    data = two_space_dataset()
    part = some_partition(data, every_class)
    train_idx = data.indices("train").numpy()
    sampler = PartnerSampler(data, train_idx, 8, partition=part)
    batches = sampler.epoch(np.random.default_rng(3))
    shuffled = ShuffleSampler(data, train_idx, 8).epoch(np.random.default_rng(3))
    assert [sorted(b.idx.tolist()) for b in batches] == [sorted(b.idx.tolist()) for b in shuffled]
    assert len(batches) == len(sampler)
    for batch in batches:
        idx, partner, ex = batch.idx.numpy(), partner_ids(batch).numpy(), batch.extra
        mixable = ex["mixable"].numpy()
        assert (data.y_cpu[partner] == data.y_cpu[idx]).all()
        assert (part[partner] != part[idx])[mixable].all()
        assert (partner == idx)[~mixable].all()
        assert mixable.tolist() == (every_class | (data.y_cpu[idx] != 2)).tolist()
        assert ex["in_p"].numpy().tolist() == part[idx].tolist()
        same = data.space_cpu[partner] == data.space_cpu[idx]
        assert ex["same_space"].numpy().tolist() == same.tolist()
        assert ex["any_cross"] == bool((mixable & ~same).any())
        partners = batch.attached["partner"]
        assert partners.space_sizes == tuple(np.bincount(data.space_cpu[partner], minlength=2))
        assert (np.diff(data.space_cpu[partners.idx.numpy()]) >= 0).all(), "partner batch ordered by space"


@pytest.mark.usefixtures("float64")
def test_partners_are_uniform_over_the_whole_training_set():
    data = two_space_dataset()
    part = some_partition(data, True)
    sampler = PartnerSampler(data, data.indices("train").numpy(), 8, partition=part)
    rng = np.random.default_rng(0)
    counts = np.zeros(len(data.y))
    for _ in range(150):
        for batch in sampler.epoch(rng):
            from_p = batch.extra["in_p"] & (batch.y == 0)
            np.add.at(counts, partner_ids(batch)[from_p].numpy(), 1)
    pool = np.flatnonzero(~part & (data.y_cpu == 0))
    assert counts.sum() == counts[pool].sum() > 0
    assert stats.chisquare(counts[pool]).pvalue > 1e-3


@pytest.mark.usefixtures("float64")
def test_alpha_one_reproduces_the_p_side_latents_exactly():
    data = two_space_dataset()
    part = some_partition(data, False)
    method = make_jm1(data)
    for batch in PartnerSampler(data, data.indices("train").numpy(), 16, partition=part).epoch(
        np.random.default_rng(1)
    ):
        ex = batch.extra
        h = method.mixed_latents(data, batch, torch.ones(len(batch)), at_input=False)
        z_self, z_partner = method.model.encode_together(data, [batch, batch.attached["partner"]])
        p_side = torch.where((ex["in_p"] | ~ex["mixable"])[:, None], z_self, z_partner[ex["partner_pos"]])
        assert torch.equal(h, p_side)
        assert torch.equal(h[ex["in_p"]], z_self[ex["in_p"]])
        # the same latents as encoding the batch and its partners separately, up to reassociation
        separate = method.model.encode(data, batch.attached["partner"])[ex["partner_pos"]]
        own = method.model.encode(data, batch)
        assert torch.allclose(h, torch.where((ex["in_p"] | ~ex["mixable"])[:, None], own, separate), atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_uniform_beta_schedule_switches_at_half_of_phase_two():
    data = two_space_dataset()
    method = make_jm1(data, epochs=10, id_fraction=0.2)  # identify epochs 1-2, mix epochs 3-10
    assert [s.epochs for s in method.stages()] == [2, 8]
    flags = []
    for epoch in range(3, 11):
        method.on_epoch_start(epoch, data)
        flags.append(method.use_beta)
    assert flags == [False] * 4 + [True] * 4
    method.on_epoch_start(6, data)
    uniform = method.draw_alpha(200_000).numpy()
    assert stats.kstest(uniform, "uniform").pvalue > 1e-3
    method.on_epoch_start(7, data)
    beta = method.draw_alpha(200_000).numpy()
    assert beta.mean() == pytest.approx(5 / 7, abs=3e-3)
    assert beta.var() == pytest.approx(10 / (49 * 8), rel=0.03)
    assert stats.kstest(beta, stats.beta(5, 2).cdf).pvalue > 1e-3
    literal = make_jm1(data, epochs=10, id_fraction=0.2, alpha="uniform-beta25")
    literal.on_epoch_start(10, data)
    assert literal.draw_alpha(200_000).mean().item() == pytest.approx(2 / 7, abs=3e-3)
    plain = make_jm1(data, epochs=10, id_fraction=0.2, alpha="uniform")
    plain.on_epoch_start(10, data)
    assert not plain.use_beta


@pytest.mark.usefixtures("float64")
def test_alpha_draws_come_from_the_run_generator():
    data = two_space_dataset()
    method = make_jm1(data, epochs=2)
    method.on_epoch_start(2, data)
    first = method.draw_alpha(5)
    method.info.generator.manual_seed(0)
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(method.draw_alpha(5), first)


@pytest.mark.usefixtures("float64")
def test_input_mixing_encodes_mixed_inputs_and_falls_back_to_latents_across_spaces():
    data = two_space_dataset()
    part = some_partition(data, False)
    method = make_jm1(data, mix_at="input")
    (batch,) = PartnerSampler(data, data.indices("train").numpy(), 100, partition=part).epoch(np.random.default_rng(2))
    ex = batch.extra
    alpha = torch.rand(len(batch), generator=torch.Generator().manual_seed(5))
    h = method.mixed_latents(data, batch, alpha, at_input=True)
    same, mixable = ex["same_space"].numpy(), ex["mixable"].numpy()
    assert (same & mixable).any() and (~same & mixable).any() and (~mixable).any()

    def encode_one(sample: int, x: torch.Tensor) -> torch.Tensor:
        return method.model.encoders[int(data.space[sample])](x[None])[0]

    def x_of(sample: int) -> torch.Tensor:
        return data.spaces[int(data.space[sample])].x[int(data.row[sample])]

    for k, (i, j) in enumerate(zip(batch.idx.tolist(), partner_ids(batch).tolist())):
        a = alpha[k].item()
        w = 1.0 if not mixable[k] else (a if part[i] else 1 - a)  # weight of sample i
        if same[k]:
            expected = encode_one(i, w * x_of(i) + (1 - w) * x_of(j))
        else:
            expected = w * encode_one(i, x_of(i)) + (1 - w) * encode_one(j, x_of(j))
        torch.testing.assert_close(h[k], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_oracle_partition_is_the_minority_groups(toy):
    toy = dataclasses.replace(toy, minority=(1, 2))  # toy's groups are feature spaces: minority declared
    method = make_jm1(toy, oracle=True)
    (stage,) = method.stages()
    assert (stage.name, stage.epochs, stage.fresh_model) == ("mix", 4, True)
    facts = method.on_stage_start(stage, toy)
    expected = (toy.split_cpu == 0) & (toy.g_cpu != 0)
    assert method.partition.tolist() == expected.tolist()
    assert facts["error_set_precision"] == facts["error_set_recall"] == 1.0
    assert stage.sampler.keywords["partition"] is method.partition


def test_bad_hparams_are_rejected():
    cls = METHODS.get("jm1")
    assert cls.defaults() == {"id_fraction": 0.25, "alpha": "uniform-beta", "mix_at": "latent", "oracle": False}
    with pytest.raises(BenchError, match="jm1.alpha: .beta.; choose from"):
        cls.check_hparams({**cls.defaults(), "alpha": "beta"})
    with pytest.raises(BenchError, match="jm1.mix_at: .output.; choose from"):
        cls.check_hparams({**cls.defaults(), "mix_at": "output"})
    with pytest.raises(BenchError, match="id_fraction"):
        cls.check_hparams({**cls.defaults(), "id_fraction": 0.0})
    cls.check_hparams(cls.defaults())


@pytest.mark.parametrize("hparams", [{}, {"mix_at": "random"}, {"mix_at": "input", "oracle": True}])
def test_jm1_trains_end_to_end(hparams):
    data = dataclasses.replace(toy_dataset(), minority=(1, 2))
    records = []
    spec = RunSpec("toy", {}, "jm1", hparams, 0, TrainConfig(epochs=3, batch_size=8))
    result = selected(train(spec, data, records.append), "val-wga")
    names = ["mix"] if hparams.get("oracle") else ["identify", "mix"]
    assert [s["name"] for s in result["stages"]] == names
    assert result["labels"] == ("training groups" if hparams.get("oracle") else "classes"), "what the run read"
    assert sum(s["epochs"] for s in result["stages"]) == 3
    for split in ("val", "test"):
        assert len(result[split]["groups"]) == data.num_groups
        assert all(math.isfinite(v) for v in result[split]["groups"].values())
        assert math.isfinite(result[split]["wga"])
    mix_records = [r for r in records if r["stage"] == "mix"]
    assert all(math.isfinite(r["train_loss"]) for r in records)
    assert all(0 <= r["logs"]["alpha_mean"] <= 1 and 0 < r["logs"]["mixed_fraction"] <= 1 for r in mix_records)


@needs_torchvision
@pytest.mark.parametrize("mix_at", ["input", "random"])
def test_input_mixing_works_on_images_on_disk(tmp_path, mix_at):
    """Issue 14's bug: mixing inputs indexed ``space.x`` directly, which disk-backed image spaces do not have."""
    from test_data_real_images import fake_waterbirds

    from benchmark.core.registry import DATASETS
    from benchmark.data import build_dataset

    fake_waterbirds(tmp_path, per_cell=4)
    options = {**DATASETS.get("waterbirds").option_defaults(), "image_size": 16, "workers": 0, "encoder": "cnn"}
    data = build_dataset("waterbirds", options, str(tmp_path))
    hparams = {**METHODS.get("jm1").defaults(), "mix_at": mix_at}
    spec = RunSpec("waterbirds", options, "jm1", hparams, 0, TrainConfig(epochs=2, batch_size=8))
    result = train(spec, data)
    assert [stage["name"] for stage in result["stages"]] == ["identify", "mix"]
    assert result["steps"] == 2 * -(-len(data.indices_cpu("train")) // 8)
