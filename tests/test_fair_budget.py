"""The shared rules that make numbers comparable: one step budget, no group-label leak through batches,
minority groups from the dataset, and the live-latent statistic (docs/methods.md, "Shared rules")."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from conftest import BUILTIN_METHODS, toy_dataset

from benchmark.core.registry import METHODS
from benchmark.data.batches import BatchStream, ShuffleSampler, eval_batches
from benchmark.data.core import bias_conflicting_groups
from benchmark.models import LATENTS, GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train
from benchmark.training.evaluation import evaluate, live_units
from benchmark.training.run_training import RunTraining
from benchmark.training.setup import build_method


def spec(method: str, epochs: int = 4, **train) -> RunSpec:
    config = TrainConfig(epochs=epochs, batch_size=8, **train)
    return RunSpec("toy", {}, method, METHODS.get(method).defaults(), 0, config)


def stage_batches(method_name: str, data, steps: int = 12) -> list[list[int]]:
    """The first ``steps`` training batches (sample ids) of every stage of a method, as the trainer draws them."""
    run = RunTraining(spec(method_name), data, on_eval=lambda record: None)
    out = []
    for _ in run.stages:
        run.begin_stage()
        out += [sorted(batch.idx.tolist()) for batch in run.stream.take(steps)]
    return out


def regrouped(data):
    """The same samples with other group labels (a random partition into as many groups)."""
    rng = np.random.default_rng(7)
    g = torch.from_numpy(rng.integers(data.num_groups, size=len(data.y)))
    return dataclasses.replace(data, g=g, a=g.clone())


def test_methods_without_group_labels_get_batches_that_do_not_depend_on_them():
    data = toy_dataset()
    other = regrouped(data)
    for name in BUILTIN_METHODS:
        if METHODS.get(name).needs_group_labels:
            continue
        assert stage_batches(name, data) == stage_batches(name, other), name


def test_methods_with_group_labels_get_group_stratified_batches():
    # the positive control of the test above: here the batches do follow the group labels
    data = toy_dataset()
    assert METHODS.get("groupdro").needs_group_labels
    assert stage_batches("groupdro", data) != stage_batches("groupdro", regrouped(data))


def test_every_method_takes_the_same_steps_and_stages_split_them():
    data = toy_dataset()
    steps_per_epoch = -(-int((data.split_code == 0).sum()) // 8)
    for name in BUILTIN_METHODS:
        records = []
        result = train(spec(name, epochs=6), data, records.append)
        assert result["steps"] == 6 * steps_per_epoch, name
        assert sum(stage["steps"] for stage in result["stages"]) == result["steps"], name
        epochs = [r["step"] for r in records if r["stage"] != "refit"]
        assert epochs == [steps_per_epoch * (e + 1) for e in range(6)], name
        assert all(r["step"] == result["steps"] for r in records if r["stage"] == "refit"), "a refit takes no step"


def test_jtt_upweighted_stage_buys_no_extra_steps():
    data = toy_dataset()
    run = dataclasses.replace(spec("jtt", epochs=4), hparams={"upweight": 50, "id_fraction": 0.25})
    result = train(run, data)
    identify, upweighted = result["stages"]
    assert upweighted["sampler"] == "repeat" and upweighted["error_set_size"] > 0
    assert (identify["steps"], upweighted["steps"]) == (result["steps"] // 4, 3 * result["steps"] // 4)


def test_batch_stream_continues_a_long_cycle_across_calls():
    data = toy_dataset()
    sampler = ShuffleSampler(data, data.indices_cpu("train"), 8)
    whole = sampler.epoch(np.random.default_rng(0))
    stream = BatchStream(sampler, np.random.default_rng(0))
    parts = stream.take(2) + stream.take(len(whole) - 2)
    assert [b.idx.tolist() for b in parts] == [b.idx.tolist() for b in whole]
    assert len(stream.take(len(whole) + 3)) == len(whole) + 3  # draws the next cycles


def test_minority_rule_on_waterbirds_and_celeba_train_counts():
    def cells(counts):  # training samples of groups g = 2y + a with the given counts
        g = np.repeat(np.arange(4), counts)
        return g // 2, g % 2, g

    # Waterbirds: landbird-on-water (0,1) and waterbird-on-land (1,0)
    assert bias_conflicting_groups(*cells([3498, 184, 56, 1057]), 4).tolist() == [False, True, True, False]
    # CelebA Blond x Male: dark-female (0,0) and blond-male (1,1), as Giannone et al. name them
    assert bias_conflicting_groups(*cells([71629, 66874, 22880, 1387]), 4).tolist() == [True, False, False, True]
    # a balanced table has no minority, whatever the group sizes
    assert not bias_conflicting_groups(*cells([10, 10, 3, 3]), 4).any()


def test_groups_that_are_not_cells_have_no_rule_minority_and_declared_ones_win():
    data = toy_dataset()  # groups are feature spaces, every class in each
    assert not data.minority_mask.any() and data.minority_names == []
    declared = dataclasses.replace(data, minority=(2,))
    assert declared.minority_names == [data.group_names[2]]
    with pytest.raises(Exception, match="minority groups"):
        dataclasses.replace(data, minority=(5,))


def test_live_units_on_a_hand_made_activity_table():
    # group 0: 200 samples; unit 0 active on 2 (1%: live), unit 1 on 1 (0.5%: dead), unit 2 never, unit 3 always
    active = torch.tensor([[2.0, 1.0, 0.0, 200.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    counts = torch.tensor([200.0, 0.0, 3.0], dtype=torch.float64)
    assert live_units(active, counts, ["a", "b", "c"]) == {"a": 0.5, "b": None, "c": 0.25}


def test_evaluate_reports_the_dead_latent_of_one_encoder():
    data = toy_dataset()
    method = METHODS.get("erm")(GroupModel(data, k=8, latent="relu"), build_method(spec("erm"), data).info)
    with torch.no_grad():  # a hopelessly negative bias: encoder 1's ReLU outputs are 0 on every input
        method.model.encoders[1][-2].out.bias.fill_(-1e6)
    metrics = evaluate(method, data, eval_batches(data, "val", 64), latents=True)
    live = metrics["live_units"]
    assert live[data.group_names[1]] == 0.0
    assert live[data.group_names[0]] > 0 and live[data.group_names[2]] > 0


@pytest.mark.parametrize("latent", sorted(LATENTS))
def test_latent_layers(latent):
    data = toy_dataset()
    torch.manual_seed(0)
    model = GroupModel(data, k=16, latent=latent)
    z = model.encode(data, eval_batches(data, "train", 100)[0])
    if latent.startswith("relu"):
        assert (z >= 0).all()
    else:
        assert (z < 0).any()
    if latent == "layernorm":
        torch.testing.assert_close(z.norm(dim=1), torch.full((len(z),), 4.0), rtol=1e-3, atol=1e-3)
    if latent == "tanh":
        assert (z.abs() < 1).all() and z.norm(dim=1).std() > 0, "bounded, each z its own norm"
    if latent == "relu-bias1":
        assert all(float(enc[-2].out.bias.detach().min()) == 1.0 for enc in model.encoders)


def test_groupdro_adjust_absent_moves_absent_groups_as_the_reference_code_does():
    data = toy_dataset()
    info = build_method(spec("groupdro"), data).info
    counts = info.train_group_counts.double()
    losses, present = torch.tensor([1.0, 2.0, 0.0]), torch.tensor([True, True, False])
    for absent, expected_absent in ((False, 0.0), (True, 0.1 * 2.0 / counts[2].sqrt())):
        method = METHODS.get("groupdro")(GroupModel(data), info, step_size=0.1, adjustment=2.0, adjust_absent=absent)
        method.group_weights(losses, present)
        assert method.log_q[2].item() == pytest.approx(float(expected_absent))
        assert method.log_q[0].item() == pytest.approx(0.1 * (1.0 + 2.0 / counts[0].sqrt().item()))


def test_bad_latent_or_sampler_is_one_line_and_exit_2():
    from conftest import bench_in_process

    for setting, known in (("train.latent=sigmoid", "layernorm"), ("train.sampler=groups", "auto")):
        proc = bench_in_process("run", "--methods", "erm", "--set", setting, "--out", "/nonexistent/never-written")
        assert proc.returncode == 2 and known in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["jm1", "jtt"])
def test_oracle_without_minority_groups_fails_with_the_reason(method):
    run = dataclasses.replace(spec(method), hparams={**METHODS.get(method).defaults(), "oracle": True})
    with pytest.raises(ValueError, match=f"{method}.oracle needs minority groups"):
        train(run, toy_dataset())


def test_describe_lists_the_minority_groups_and_how_they_were_found():
    from conftest import bench_in_process

    proc = bench_in_process("describe", "digits-hetero", "--set", "data.n_mnist1d=600")
    assert proc.returncode == 0, proc.stderr
    assert "minority groups (declared by the dataset): digits-proj" in proc.stdout
    proc = bench_in_process("describe", "waterbirds-style", "--set", "data.scale=0.3", "--set", "data.val_size=400",
                            "--set", "data.test_size=800")
    assert proc.returncode == 0, proc.stderr
    assert "P(a | y) < P(a) in training): landbird,water, waterbird,land" in proc.stdout
