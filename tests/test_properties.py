"""Property-based tests (hypothesis): group metrics and the training batch samplers."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from benchmark.core.metrics import HEADLINE, group_metrics
from benchmark.data.batches import SAMPLERS, ShuffleSampler, StratifiedSampler
from benchmark.data.core import FeatureSpace, GroupDataset

FAST = settings(max_examples=150, deadline=None)
SAMPLER_RUNS = settings(max_examples=60, deadline=None)


# --------------------------------------------------------------------------------------------- metrics


@st.composite
def group_counts(draw, min_groups: int = 1, max_groups: int = 8, absent: bool = True):
    """Per-group (correct, total) integer counts with 0 <= correct <= total; total 0 is an absent group.

    Half the time every present group has the same accuracy (multiples of one correct/total pair): the
    case where worst, best and mean coincide and float rounding shows."""
    n = draw(st.integers(min_groups, max_groups))
    if draw(st.booleans()):
        totals = draw(st.lists(st.integers(0 if absent else 1, 1000), min_size=n, max_size=n))
        corrects = [draw(st.integers(0, t)) for t in totals]
    else:
        t0 = draw(st.integers(1, 100))
        c0 = draw(st.integers(0, t0))
        scales = draw(st.lists(st.integers(0 if absent else 1, 10), min_size=n, max_size=n))
        totals, corrects = [k * t0 for k in scales], [k * c0 for k in scales]
    return corrects, totals, [f"g{i}" for i in range(n)]


def exact_accuracies(correct, total) -> list[Fraction | None]:
    """Per-group accuracy in percent as an exact fraction, None for an absent group."""
    return [Fraction(100 * c, t) if t > 0 else None for c, t in zip(correct, total)]


def close(value: float, reference: Fraction | float) -> bool:
    return math.isclose(value, float(reference), rel_tol=1e-12, abs_tol=1e-12)


@FAST
@given(group_counts())
def test_group_metrics_match_exact_reference(counts):
    correct, total, names = counts
    m = group_metrics(correct, total, names)
    accs = exact_accuracies(correct, total)
    present = [a for a in accs if a is not None]
    assert list(m["groups"]) == names
    for name, a in zip(names, accs):
        # absent groups are missing (None), never 0 or 100
        assert (m["groups"][name] is None) if a is None else close(m["groups"][name], a)
    if not present:
        assert all(m[k] is None for k in HEADLINE)
        return
    assert close(m["wga"], min(present)) and close(m["bga"], max(present))
    # wga/bga are exactly the worst/best of the reported (present) group accuracies
    reported = [v for v in m["groups"].values() if v is not None]
    assert m["wga"] == min(reported) and m["bga"] == max(reported)
    assert m["delta_acc"] == m["bga"] - m["wga"]
    assert close(m["acc"], Fraction(100 * sum(correct), sum(total)))
    assert close(m["mean_group_acc"], sum(present) / len(present))


@FAST
@given(group_counts())
@example(([1, 1, 1], [9, 9, 9], ["a", "b", "c"]))  # three groups at 11.11...%: np.mean rounds 1 ulp below wga
@example(([5, 5, 5], [9, 9, 9], ["a", "b", "c"]))  # three groups at 55.55...%: np.mean rounds 1 ulp above bga
def test_mean_group_acc_lies_between_worst_and_best(counts):
    correct, total, names = counts
    m = group_metrics(correct, total, names)
    assume(m["wga"] is not None)
    assert m["wga"] <= m["bga"]
    assert m["wga"] <= m["mean_group_acc"] <= m["bga"]  # exactly, also where np.mean rounds (the examples)
    if m["wga"] == m["bga"]:
        assert m["mean_group_acc"] == m["wga"]


@FAST
@given(group_counts(), st.randoms(use_true_random=False))
def test_permuting_groups_permutes_groups_and_keeps_headline(counts, random):
    correct, total, names = counts
    perm = list(range(len(names)))
    random.shuffle(perm)
    m = group_metrics(correct, total, names)
    p = group_metrics([correct[i] for i in perm], [total[i] for i in perm], [names[i] for i in perm])
    assert list(p["groups"].items()) == [(names[i], m["groups"][names[i]]) for i in perm]
    for k in ("wga", "bga", "acc", "delta_acc"):
        assert p[k] == m[k], k  # min/max/integer sums: order-independent, so exactly equal
    if m["mean_group_acc"] is None:
        assert p["mean_group_acc"] is None
    else:
        # a float sum in another order may differ in the last bit
        assert close(p["mean_group_acc"], m["mean_group_acc"])


@FAST
@given(group_counts(absent=False), st.lists(st.integers(0, 8), min_size=1, max_size=4))
def test_absent_groups_are_none_and_excluded(counts, positions):
    """Inserting absent groups (total 0) anywhere leaves every headline metric exactly unchanged."""
    correct, total, names = counts
    m = group_metrics(correct, total, names)
    c2, t2, n2 = list(correct), list(total), list(names)
    for k, pos in enumerate(positions):
        pos = min(pos, len(n2))
        c2.insert(pos, 0)
        t2.insert(pos, 0)
        n2.insert(pos, f"absent{k}")
    p = group_metrics(c2, t2, n2)
    for k in HEADLINE:
        assert p[k] == m[k], k
    assert all(p["groups"][f"absent{k}"] is None for k in range(len(positions)))
    assert {k: v for k, v in p["groups"].items() if not k.startswith("absent")} == m["groups"]


@FAST
@given(st.integers(1, 8), st.lists(st.floats(0, 10), min_size=8, max_size=8))
def test_all_groups_absent_gives_none_everywhere(n, weights):
    m = group_metrics([0] * n, [0] * n, [f"g{i}" for i in range(n)], {"adj_acc": weights[:n]})
    assert all(m[k] is None for k in (*HEADLINE, "adj_acc"))
    assert m["groups"] == {f"g{i}": None for i in range(n)}


weight = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.01, 10.0))


@FAST
@given(group_counts(), st.data())
def test_summaries_are_weighted_means_over_present_groups(counts, data):
    correct, total, names = counts
    n = len(names)
    summaries = {
        "adj_acc": data.draw(st.lists(weight, min_size=n, max_size=n)),
        "few": data.draw(st.lists(st.sampled_from([0, 1]), min_size=n, max_size=n)),
    }
    m = group_metrics(correct, total, names, summaries)
    accs = exact_accuracies(correct, total)
    for metric, weights in summaries.items():
        pairs = [(Fraction(w), a) for w, a in zip(weights, accs) if a is not None and w > 0]
        if not pairs:
            assert m[metric] is None, metric
            continue
        reference = sum(w * a for w, a in pairs) / sum(w for w, _ in pairs)
        assert math.isclose(m[metric], float(reference), rel_tol=1e-9), (metric, m[metric], float(reference))
        # a weighted mean of the present groups lies between their worst and best
        assert m["wga"] - 1e-9 <= m[metric] <= m["bga"] + 1e-9


# -------------------------------------------------------------------------------------------- samplers

KINDS = (("vector", (3,)), ("image", (1, 2, 2)), ("sequence", (1, 4)))


@st.composite
def group_datasets(draw):
    """A GroupDataset with 2..5 groups of 1..60 training samples (plus a few val/test samples), spread over
    1..3 feature spaces (a group lives in one space; a space may hold several groups or none), with the
    samples in a random order so that groups, spaces and splits interleave."""
    n_groups = draw(st.integers(2, 5))
    train_sizes = draw(st.lists(st.integers(1, 60), min_size=n_groups, max_size=n_groups))
    held_out = draw(st.lists(st.integers(0, 4), min_size=n_groups, max_size=n_groups))
    n_spaces = draw(st.integers(1, 3))
    space_of = draw(st.lists(st.integers(0, n_spaces - 1), min_size=n_groups, max_size=n_groups))
    num_classes = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    g = np.repeat(np.arange(n_groups), np.add(train_sizes, held_out))
    split = np.concatenate([[0] * t + list(rng.integers(1, 3, size=h)) for t, h in zip(train_sizes, held_out)])
    perm = rng.permutation(len(g))
    g, split = g[perm], split[perm]
    space = np.asarray(space_of)[g]
    row = np.zeros(len(g), dtype=np.int64)
    spaces = []
    for s in range(n_spaces):
        mine = space == s
        row[mine] = np.arange(mine.sum())
        kind, shape = KINDS[s]
        spaces.append(FeatureSpace(f"{kind}{s}", kind, torch.randn(int(mine.sum()), *shape)))
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.int64)  # noqa: E731
    return GroupDataset(
        name="prop",
        spaces=spaces,
        space=t(space),
        row=t(row),
        y=t(rng.integers(0, num_classes, size=len(g))),
        a=t(space),
        g=t(g),
        split_code=t(split),
        class_names=[str(c) for c in range(num_classes)],
        attr_names=[s.name for s in spaces],
        group_names=[f"group{i}" for i in range(n_groups)],
    )


batch_sizes = st.one_of(st.integers(1, 16), st.integers(17, 400))
SAMPLER_CLASSES = [StratifiedSampler, ShuffleSampler]


def test_sampler_registry_holds_both_samplers():
    assert SAMPLERS["stratified"] is StratifiedSampler and SAMPLERS["shuffle"] is ShuffleSampler


@pytest.mark.parametrize("cls", SAMPLER_CLASSES, ids=lambda c: c.name)
@SAMPLER_RUNS
@given(data=group_datasets(), batch_size=batch_sizes, seed=st.integers(0, 2**32 - 1))
def test_every_training_sample_exactly_once_per_epoch(cls, data, batch_size, seed):
    train = data.indices_cpu("train")
    batches = cls(data, train, batch_size).epoch(np.random.default_rng(seed))
    seen = np.concatenate([b.idx.numpy() for b in batches])
    assert np.array_equal(np.sort(seen), train)  # train is sorted: each training sample once, nothing else
    for b in batches:
        assert torch.equal(b.y, data.y[b.idx]) and torch.equal(b.a, data.a[b.idx]) and torch.equal(b.g, data.g[b.idx])


@pytest.mark.parametrize("cls", SAMPLER_CLASSES, ids=lambda c: c.name)
@SAMPLER_RUNS
@given(data=group_datasets(), batch_size=batch_sizes, seed=st.integers(0, 2**32 - 1))
def test_batches_are_ordered_by_space_with_matching_sizes(cls, data, batch_size, seed):
    n_spaces, n_cells = len(data.spaces), data.num_groups * data.num_classes
    for b in cls(data, data.indices_cpu("train"), batch_size).epoch(np.random.default_rng(seed)):
        spaces = data.space_cpu[b.idx.numpy()]
        assert np.all(np.diff(spaces) >= 0), spaces
        assert b.space_sizes == tuple(np.bincount(spaces, minlength=n_spaces).tolist())
        assert sum(b.space_sizes) == len(b)
        cells = data.g_cpu[b.idx.numpy()] * data.num_classes + data.y_cpu[b.idx.numpy()]
        assert b.max_cell == np.bincount(cells, minlength=n_cells).max(initial=0)


@SAMPLER_RUNS
@given(data=group_datasets(), batch_size=batch_sizes, seed=st.integers(0, 2**32 - 1))
def test_shuffle_sampler_cuts_consecutive_chunks(data, batch_size, seed):
    train = data.indices_cpu("train")
    sampler = ShuffleSampler(data, train, batch_size)
    batches = sampler.epoch(np.random.default_rng(seed))
    assert len(batches) == len(sampler) == -(-len(train) // batch_size)
    assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
    assert 1 <= len(batches[-1]) <= batch_size
    # the chunks are those of the generator's permutation (reordered by space only within a batch)
    order = np.random.default_rng(seed).permutation(train)
    for k, b in enumerate(batches):
        assert np.array_equal(np.sort(b.idx.numpy()), np.sort(order[k * batch_size : (k + 1) * batch_size]))


@SAMPLER_RUNS
@given(data=group_datasets(), batch_size=batch_sizes, seed=st.integers(0, 2**32 - 1))
def test_stratified_batches_hold_groups_in_proportion(data, batch_size, seed):
    """The docstring's guarantee: with n_batches = ceil(n / batch_size), group g contributes
    floor(n_g / n_batches) or ceil(n_g / n_batches) samples to every batch, i.e. its proportion n_g / n times
    the mean batch size n / n_batches, within +-1 (strictly less than 1 away), and every batch's size is
    within G of n / n_batches."""
    train = data.indices_cpu("train")
    n, counts = len(train), np.bincount(data.g_cpu[train], minlength=data.num_groups)
    sampler = StratifiedSampler(data, train, batch_size)
    n_batches = len(sampler)
    assert n_batches == -(-n // batch_size)
    batches = sampler.epoch(np.random.default_rng(seed))
    assert 1 <= len(batches) <= n_batches and all(len(b) > 0 for b in batches), "never an empty batch"
    if counts.max() < n_batches:  # batch_size < G and every group small: batches no group reaches are dropped
        return
    assert len(batches) == n_batches
    for got in (np.bincount(b.g.numpy(), minlength=data.num_groups) for b in batches):
        assert np.all((got == counts // n_batches) | (got == -(-counts // n_batches))), (got, counts, n_batches)
        assert np.all(np.abs(got - counts / n * (n / n_batches)) < 1)
        assert abs(got.sum() - n / n_batches) < data.num_groups


@pytest.mark.parametrize("cls", SAMPLER_CLASSES, ids=lambda c: c.name)
@SAMPLER_RUNS
@given(data=group_datasets(), batch_size=batch_sizes, seed=st.integers(0, 2**32 - 1))
def test_epochs_repeat_with_the_seed_and_differ_across_seeds(cls, data, batch_size, seed):
    sampler = cls(data, data.indices_cpu("train"), batch_size)

    def epoch(s):
        return [(b.idx.tolist(), b.space_sizes) for b in sampler.epoch(np.random.default_rng(s))]

    first = epoch(seed)
    assert epoch(seed) == first
    if len(first) > 1:
        # With more than one batch an epoch has at least two possible outcomes (a group spans batches or
        # two samples of a group share a batch and space), so for one other seed the two may still match by
        # chance (up to 1/2); among 30 other seeds at least one must give a different epoch.
        assert any(epoch(seed + k) != first for k in range(1, 31))
