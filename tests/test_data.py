"""digits-hetero construction, batching by feature space, and the stratified sampler."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import small_hetero_options

from benchmark.data import build_dataset
from benchmark.data.batches import ShuffleSampler, StratifiedSampler, eval_batches
from benchmark.data.mnist1d_generator import generate
from benchmark.data.sources import stratified_parts


@pytest.fixture(scope="module")
def hetero():
    return build_dataset("digits-hetero", {**small_hetero_options(), "n_mnist1d": 10000})


def test_digits_hetero_group_and_split_counts(hetero):
    counts = hetero.counts_table()
    assert hetero.group_names == ["mnist1d", "digits8", "digits16", "digits-proj"]
    assert [counts[s][0] for s in ("train", "val", "test")] == [6000, 2000, 2000]
    sizes = [len(s.x) for s in hetero.spaces]
    assert sizes[0] == 10000
    assert sum(sizes[1:]) == 1797  # every sklearn digit used once across the three groups
    for g in (1, 2, 3):  # n_eval = 200 val and 200 test images per sklearn group, 20 per class
        assert (counts["val"][g], counts["test"][g]) == (200, 200)
        for split in (1, 2):
            per_class = torch.bincount(hetero.y[(hetero.g == g) & (hetero.split_code == split)], minlength=10)
            assert per_class.tolist() == [20] * 10
    train = [counts["train"][g] for g in (1, 2, 3)]
    assert sum(train) == 1797 - 1200
    for got, frac in zip(train, (0.5, 0.3, 0.2)):  # the rest trains the groups 50/30/20, stratified by class
        assert abs(got - frac * 597) <= 10, train
    assert [s.shape for s in hetero.spaces] == [(1, 40), (1, 8, 8), (1, 16, 16), (32,)]


def test_digits_hetero_labels_and_groups_are_consistent(hetero):
    assert torch.equal(hetero.g, hetero.space) and torch.equal(hetero.a, hetero.space)
    assert hetero.num_classes == 10
    for g in range(4):
        for split in range(3):
            classes = hetero.y[(hetero.g == g) & (hetero.split_code == split)].unique()
            assert len(classes) == 10, "every group has every class in every split"
    # rows index each space exactly once
    for s, space in enumerate(hetero.spaces):
        rows = hetero.row[hetero.space == s].sort().values
        assert torch.equal(rows, torch.arange(len(space.x)))
    assert hetero.spaces[1].x.min() >= 0 and hetero.spaces[1].x.max() <= 1


def test_sklearn_groups_use_disjoint_source_images(hetero):
    from benchmark.data.sources import sklearn_digits

    images, _ = sklearn_digits()
    small = hetero.spaces[1].x.flatten(1).numpy()
    found = {tuple(np.round(r, 6)) for r in images.reshape(len(images), -1)}
    assert all(tuple(np.round(r, 6)) in found for r in small)
    assert len({tuple(np.round(r, 6)) for r in small}) == len(small)


def test_construction_is_deterministic_and_seeded():
    a = build_dataset("digits-hetero", small_hetero_options(seed=3))
    b = build_dataset("digits-hetero", small_hetero_options(seed=3, rotation=15.000001))  # bypasses the cache
    c = build_dataset("digits-hetero", small_hetero_options(seed=4))
    assert torch.equal(a.split_code, b.split_code) and torch.equal(a.spaces[3].x, b.spaces[3].x)
    assert not torch.equal(a.split_code, c.split_code)


def test_building_leaves_global_random_state_alone():
    np_state, py_state, torch_state = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    build_dataset("digits-hetero", small_hetero_options(seed=7))
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert random.getstate() == py_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize(("num_samples", "seed"), [(300, 0), (1_237, 11)])
def test_mnist1d_generator_equals_the_package_bit_for_bit(num_samples, seed):
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed = num_samples, seed
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        reference = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x, y = generate(num_samples, seed)
    assert x.dtype == np.float64 and x.shape == (num_samples // 10 * 10, 40)
    assert np.array_equal(x, np.concatenate([reference["x"], reference["x_test"]]))
    assert np.array_equal(y, np.concatenate([reference["y"], reference["y_test"]]))


def test_stratified_parts_fractions_per_class():
    y = np.repeat(np.arange(4), [100, 50, 37, 3])
    part = stratified_parts(y, (0.6, 0.2, 0.2), np.random.default_rng(0))
    for c, n in zip(range(4), [100, 50, 37, 3]):
        counts = np.bincount(part[y == c], minlength=3)
        assert counts.sum() == n
        assert np.all(np.abs(counts - np.array([0.6, 0.2, 0.2]) * n) < 1)


def test_stratified_sampler_keeps_group_proportions(small_hetero):
    train = small_hetero.indices("train").numpy()
    sampler = StratifiedSampler(small_hetero, train, batch_size=50)
    counts = np.bincount(small_hetero.g_cpu[train])
    expected = counts / len(sampler)
    seen = []
    for batch in sampler.epoch(np.random.default_rng(0)):
        per_group = np.bincount(batch.g.numpy(), minlength=len(counts))
        assert np.all(np.abs(per_group - expected) < 1), (per_group, expected)
        assert abs(len(batch) - len(train) / len(sampler)) < len(counts)  # sizes vary by < G around n/n_batches
        seen.append(batch.idx.numpy())
    seen = np.concatenate(seen)
    assert np.array_equal(np.sort(seen), np.sort(train)), "every training sample exactly once per epoch"


def test_sampler_epochs_differ_and_repeat_with_seed(small_hetero):
    train = small_hetero.indices("train").numpy()
    for cls in (StratifiedSampler, ShuffleSampler):
        sampler = cls(small_hetero, train, batch_size=64)
        first = [b.idx for b in sampler.epoch(np.random.default_rng(5))]
        again = [b.idx for b in sampler.epoch(np.random.default_rng(5))]
        other = [b.idx for b in sampler.epoch(np.random.default_rng(6))]
        assert all(torch.equal(x, z) for x, z in zip(first, again))
        assert not all(torch.equal(x, z) for x, z in zip(first, other))


def test_batches_are_ordered_by_space_with_matching_sizes(small_hetero):
    for batch in eval_batches(small_hetero, "val", 97):
        spaces = small_hetero.space[batch.idx]
        assert torch.equal(spaces, spaces.sort().values)
        assert tuple(torch.bincount(spaces, minlength=4).tolist()) == batch.space_sizes
        assert torch.equal(batch.y, small_hetero.y[batch.idx]) and torch.equal(batch.g, small_hetero.g[batch.idx])
        assert batch.max_cell == torch.bincount(batch.g * 10 + batch.y).max().item()
    covered = torch.cat([b.idx for b in eval_batches(small_hetero, "test", 97)]).sort().values
    assert torch.equal(covered, small_hetero.indices("test"))


def test_datasets_build_on_one_thread_whatever_the_process_uses(monkeypatch):
    """A multi-threaded float32 BLAS product can sum in another order (it changed digits-proj's last bits on an
    AVX-512 CPU), so builders run with NumPy's BLAS and torch on one thread; the caller's setting comes back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from benchmark.core.registry import DATASETS

    builder, seen = DATASETS.get("digits-hetero"), []
    original = builder.build

    def recording(self, options, data_root):
        seen.append((torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info()}))
        return original(self, options, data_root)

    monkeypatch.setattr(builder, "build", recording)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threadpool_limits(2):
            build_dataset("digits-hetero", small_hetero_options(proj_dim=31))
            assert {pool["num_threads"] for pool in threadpool_info()} == {2}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert seen == [(1, {1})]


def test_a_process_started_by_the_sweep_reuses_its_built_datasets(monkeypatch):
    """Pool workers take the parent's datasets (:func:`built_datasets`) instead of building them again."""
    import benchmark.data as data_layer
    from benchmark.core.registry import DATASETS

    options = small_hetero_options(proj_dim=30)
    built = build_dataset("digits-hetero", options)
    pickled = data_layer.built_datasets()
    monkeypatch.setattr(data_layer, "_built", {})

    def no_build(self, options, data_root):
        raise AssertionError("built again")

    monkeypatch.setattr(DATASETS.get("digits-hetero"), "build", no_build)
    data_layer.adopt_datasets(pickled)
    adopted = build_dataset("digits-hetero", options)
    assert adopted is not built and torch.equal(adopted.y, built.y)
    assert all(torch.equal(a.x, b.x) for a, b in zip(adopted.spaces, built.spaces))
    with pytest.raises(AssertionError, match="built again"):
        build_dataset("digits-hetero", small_hetero_options(proj_dim=29))
