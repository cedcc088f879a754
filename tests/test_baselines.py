"""The data-balancing baselines subg, suby, rwg, rwy and the logit-adjusted loss logit-adj (docs/methods.md): the
balanced subset, the balanced draws, the loss against a float64 reference, ERM at τ = 0, and a run of each through
the CLI; and the label tier that ``bench list`` shows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from conftest import BUILTIN_METHODS, SMALL_HETERO, bench_in_process, make_info, toy_dataset

from benchmark.core.registry import METHODS
from benchmark.data.batches import BatchStream, ShuffleSampler, eval_batches
from benchmark.methods.erm import ERM
from benchmark.models import GroupModel

NEW = ("subg", "suby", "rwg", "rwy", "logit-adj")


def imbalanced_toy(dtype=torch.float32):
    """The toy set (groups of 120, 60 and 30 samples, in three feature spaces) with classes drawn 6:3:1, so that
    neither groups nor classes are balanced and the class counts do not follow the groups."""
    data = toy_dataset(n_per_group=(120, 60, 30), dtype=dtype)
    y = np.random.default_rng(3).choice(3, size=len(data.y), p=[0.6, 0.3, 0.1])
    return dataclasses.replace(data, y=torch.from_numpy(y))


def regrouped(data):
    """The same samples with other group labels (a random partition into as many groups)."""
    g = torch.from_numpy(np.random.default_rng(7).integers(data.num_groups, size=len(data.y)))
    return dataclasses.replace(data, g=g, a=g.clone())


def stage_sampler(name: str, data, seed: int = 0, batch_size: int = 8):
    """The method's (single) stage entered as the trainer enters it: its facts and its sampler over the training
    set."""
    method = METHODS.get(name)(GroupModel(data), make_info(data, seed=seed))
    (stage,) = method.stages()
    facts = method.on_stage_start(stage, data)
    return facts, stage.sampler(data, data.indices_cpu("train"), batch_size)


def train_counts(labels: np.ndarray, data) -> np.ndarray:
    """Training samples per label."""
    return np.bincount(labels[data.indices_cpu("train")])


def test_the_new_methods_are_built_in_so_the_shared_checks_cover_them():
    # test_fair_budget.py and test_stacked.py iterate over BUILTIN_METHODS
    assert set(NEW) <= set(BUILTIN_METHODS)
    assert all(METHODS.get(name).stackable for name in NEW)
    assert [METHODS.get(name).needs_group_labels for name in NEW] == [True, False, True, False, False]


@pytest.mark.parametrize("name, balance", [("subg", "group"), ("suby", "class")])
def test_the_subset_holds_every_label_at_the_rarest_labels_size_and_is_seeded_by_the_run(name, balance):
    data = imbalanced_toy()
    labels = data.g_cpu if balance == "group" else data.y_cpu
    smallest = train_counts(labels, data).min()
    facts, sampler = stage_sampler(name, data)
    subset = sampler.indices
    assert sampler.name == "subset" and len(set(subset.tolist())) == len(subset)
    assert set(subset.tolist()) <= set(data.indices_cpu("train").tolist())
    assert np.bincount(labels[subset]).tolist() == [smallest] * len(train_counts(labels, data))
    assert facts["subset_size"] == len(subset) == smallest * len(train_counts(labels, data))
    assert list(facts[f"subset_{balance}_sizes"].values()) == [smallest] * len(train_counts(labels, data))
    assert np.array_equal(stage_sampler(name, data, seed=0)[1].indices, subset)
    assert not np.array_equal(stage_sampler(name, data, seed=1)[1].indices, subset)


def test_subg_reads_the_group_labels_and_suby_does_not():
    data, other = imbalanced_toy(), regrouped(imbalanced_toy())
    assert np.array_equal(stage_sampler("suby", data)[1].indices, stage_sampler("suby", other)[1].indices)
    assert not np.array_equal(stage_sampler("subg", data)[1].indices, stage_sampler("subg", other)[1].indices)


def test_the_subset_stage_takes_the_whole_budget_in_steps():
    data = imbalanced_toy()
    facts, sampler = stage_sampler("subg", data)
    steps = make_info(data, epochs=3).steps_per_epoch * 3
    assert len(sampler) < steps // 3  # a cycle of the subset is shorter than an epoch of the training set
    batches = BatchStream(sampler, np.random.default_rng(0)).take(steps)
    assert len(batches) == steps and set(torch.cat([b.idx for b in batches]).tolist()) == set(sampler.indices)


def draw_counts(sampler, labels: np.ndarray, cycles: int) -> tuple[np.ndarray, int]:
    """How often each label was drawn over ``cycles`` cycles of ``sampler`` (a fixed generator), and the draws."""
    rng = np.random.default_rng(0)
    drawn = np.concatenate([b.idx.numpy() for _ in range(cycles) for b in sampler.epoch(rng)])
    return np.bincount(labels[drawn], minlength=labels.max() + 1), len(drawn)


@pytest.mark.parametrize("name, balance", [("rwg", "group"), ("rwy", "class")])
def test_reweighted_draws_hold_every_label_equally_in_expectation(name, balance):
    data = imbalanced_toy()
    labels = data.g_cpu if balance == "group" else data.y_cpu
    k = len(train_counts(labels, data))
    _, sampler = stage_sampler(name, data)
    assert sampler.name == "reweighted"
    counts, n = draw_counts(sampler, labels, cycles=200)
    assert n == 200 * len(data.indices_cpu("train"))
    # each label's count is Binomial(n, 1/k): within 4 standard deviations (a 6e-5 chance per label to fail)
    sd = np.sqrt(n * (1 / k) * (1 - 1 / k))
    assert np.abs(counts - n / k).max() < 4 * sd, (counts, n / k, sd)
    # the control: ERM's shuffling keeps the training proportions, far outside that band
    shuffled, m = draw_counts(ShuffleSampler(data, data.indices_cpu("train"), 8), labels, cycles=200)
    assert np.abs(shuffled - m / k).max() > 40 * sd


def test_reweighted_draws_are_uniform_within_a_group():
    data = imbalanced_toy()
    train = data.indices_cpu("train")
    _, sampler = stage_sampler("rwg", data)
    counts, n = draw_counts(sampler, np.arange(len(data.y)), cycles=400)
    per_sample = counts[train]
    for g, n_g in enumerate(train_counts(data.g_cpu, data)):
        p = 1 / (data.num_groups * n_g)  # each sample of group g: 1 / (G n_g) per draw
        sd = np.sqrt(n * p * (1 - p))
        mine = per_sample[data.g_cpu[train] == g]
        assert np.abs(mine - n * p).max() < 5 * sd, (g, mine.min(), mine.max(), n * p)


def test_logit_adj_at_tau_0_is_erm_step_for_step(float64):
    data = imbalanced_toy(dtype=torch.float64)
    runs = []
    for name, hparams in (("erm", {}), ("logit-adj", {"tau": 0.0})):
        torch.manual_seed(0)
        method = METHODS.get(name)(GroupModel(data), make_info(data), **hparams)
        optimizer = torch.optim.Adam(method.model.parameters(), lr=1e-2)
        sampler = ShuffleSampler(data, data.indices_cpu("train"), 8)
        losses = []
        for batch in BatchStream(sampler, np.random.default_rng(0)).take(6):
            loss, _ = method.loss(data, batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        runs.append((losses, [p.detach().clone() for p in method.model.parameters()]))
    (erm_losses, erm_params), (adj_losses, adj_params) = runs
    assert adj_losses == erm_losses and len(set(erm_losses)) == 6
    assert all(torch.equal(a, b) for a, b in zip(adj_params, erm_params))


def test_logit_adj_loss_equals_a_float64_reference_and_predicts_raw_logits(float64):
    data = imbalanced_toy(dtype=torch.float64)
    tau = 0.7
    torch.manual_seed(0)
    method = METHODS.get("logit-adj")(GroupModel(data), make_info(data), tau=tau)
    batch = eval_batches(data, "train", 10_000)[0]
    loss, _ = method.loss(data, batch)
    logits = method.model(data, batch).detach().numpy()
    counts = train_counts(data.y_cpu, data).astype(np.float64)
    adjusted = logits + tau * np.log(counts / counts.sum())
    top = adjusted.max(1, keepdims=True)
    log_z = top[:, 0] + np.log(np.exp(adjusted - top).sum(1))
    y = batch.y.numpy()
    expected = np.mean(log_z - adjusted[np.arange(len(y)), y])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    erm = F.cross_entropy(torch.from_numpy(logits), batch.y).item()
    assert abs(loss.item() - erm) > 0.1  # the adjustment matters on these priors
    assert torch.equal(method.predict(data, batch), method.model(data, batch))


def test_labels_come_from_the_label_tier_and_bench_list_shows_them():
    tiers = {name: METHODS.get(name).label_tier() for name in ("subg", "suby", "rwg", "rwy", "logit-adj", "groupdro")}
    assert tiers == {
        "subg": "training groups",
        "suby": "classes",
        "rwg": "training groups",
        "rwy": "classes",
        "logit-adj": "classes",
        "groupdro": "training groups",
    }

    class ValidationTuned(ERM):
        """A method that would read validation group labels in training."""

        @classmethod
        def label_tier(cls) -> str:
            return "validation groups"

    assert ValidationTuned.label_tier() == "validation groups" and ERM.label_tier() == "classes"
    listed = bench_in_process("list", "methods")
    assert listed.returncode == 0, listed.stderr
    rows = {}
    for line in listed.stdout.splitlines():
        if line.startswith("│") and line.split("│")[1].strip():
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells[1]
    assert "labels in training" in listed.stdout
    assert {name: rows[name] for name in tiers} == tiers


def test_each_new_method_trains_through_the_cli_and_reaches_the_leaderboard(tmp_path):
    out = tmp_path / "results"
    args = ["run", "--methods", ",".join(NEW), *SMALL_HETERO, "--seeds", "0", "--workers", "1", "--out", str(out)]
    proc = bench_in_process(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    board = pd.read_csv(out / "digits-hetero" / "leaderboard.csv")
    assert sorted(board["method"]) == sorted(NEW)
    results = [json.loads(path.read_text()) for path in out.glob("digits-hetero/*/*/result.json")]
    results = {r["method"]: r for r in results}
    assert sorted(results) == sorted(NEW) and all(r["status"] == "ok" for r in results.values())
    assert len({r["steps"] for r in results.values()}) == 1, "every method takes the same steps"
    samplers = {name: r["stages"][0]["sampler"] for name, r in results.items()}
    assert samplers == {"subg": "subset", "suby": "subset", "rwg": "reweighted", "rwy": "reweighted",
                        "logit-adj": "shuffle"}  # fmt: skip
    subg = results["subg"]["stages"][0]
    smallest = min(results["subg"]["group_sizes"]["train"].values())
    assert set(subg["subset_group_sizes"].values()) == {smallest}
    assert subg["subset_size"] == smallest * len(subg["subset_group_sizes"])


def test_a_negative_tau_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "results"
    proc = bench_in_process("run", "--methods", "logit-adj", "--set", "logit-adj.tau=-1", "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "logit-adj.tau: -1.0 (must be >= 0)" in lines[0]
    assert not out.exists()
