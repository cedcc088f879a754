"""digits-hetero-spurious: group and split counts, the marker that names a class, val and test sequences shown with
both markers, disjoint sklearn images, determinism; and (slow) that ERM leans on the marker while an upweighting
method does not as much."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.registry import DATASETS
from benchmark.data import build_dataset

NAME = "digits-hetero-spurious"


def options(**overrides) -> dict:
    return {**DATASETS.get(NAME).option_defaults(), "n_mnist1d": 2000, **overrides}


@pytest.fixture(scope="module")
def data():
    return build_dataset(NAME, options())


def marker_class(data, mask: torch.Tensor) -> torch.Tensor:
    """The class each selected sequence's marker names: the position of its bump among the last ten."""
    rows = data.row[mask]
    return data.spaces[0].x[rows, 0, 40:].argmax(1)


def test_groups_splits_and_counts(data):
    counts = data.counts_table()
    assert data.group_names == ["mnist1d,aligned", "mnist1d,conflicting", "digits8", "digits-proj"]
    assert counts["train"][:2] == [1140, 60]  # 1200 training sequences, 5% of each class conflicting
    assert counts["val"][:2] == counts["test"][:2] == [400, 400]  # each held-out sequence with both markers
    assert [counts[s][2:] for s in ("val", "test")] == [[200, 200], [200, 200]]
    assert counts["train"][2] + counts["train"][3] == 1797 - 800  # the sklearn images left train both spaces
    assert [s.shape for s in data.spaces] == [(1, 50), (1, 8, 8), (64,)]
    assert data.minority_names == ["mnist1d,conflicting"]
    for g in range(4):
        for split in range(3):
            assert len(data.y[(data.g == g) & (data.split_code == split)].unique()) == 10


def test_the_marker_names_the_class_exactly_for_the_aligned_group(data):
    sequences = data.space == 0
    named = marker_class(data, sequences)
    aligned = data.g[sequences] == 0
    assert torch.equal(named[aligned], data.y[sequences][aligned])
    assert (named[~aligned] != data.y[sequences][~aligned]).all()
    bumps = data.spaces[0].x[:, 0, 40:].max(1).values
    assert bumps.min() > 0.6 and bumps.max() < 1.4  # height 1 (cue_strength) plus noise of 0.1


def test_val_and_test_show_each_sequence_with_both_markers(data):
    for split in (1, 2):
        rows = {g: data.row[(data.space == 0) & (data.split_code == split) & (data.g == g)] for g in (0, 1)}
        signal = data.spaces[0].x[:, 0, :40]
        aligned, conflicting = signal[rows[0]], signal[rows[1]]
        assert torch.equal(aligned, conflicting), "the same signals, in the same order, in both groups"
    train_rows = data.row[(data.space == 0) & (data.split_code == 0)]
    held = data.row[(data.space == 0) & (data.split_code > 0)]
    train_signals = {tuple(r.tolist()) for r in data.spaces[0].x[train_rows, 0, :40]}
    assert not any(tuple(r.tolist()) in train_signals for r in data.spaces[0].x[held, 0, :40])


def test_the_sklearn_spaces_use_disjoint_source_images(data):
    from benchmark.data.sources import sklearn_digits

    images, _ = sklearn_digits()
    small = data.spaces[1].x.flatten(1).numpy()
    keys = {row.tobytes() for row in images.reshape(len(images), -1)}
    assert all(row.tobytes() in keys for row in small)
    assert len(small) + len(data.spaces[2].x) == 1797  # every image once, in one of the two spaces


def test_construction_is_deterministic_and_seeded():
    a, b, c = (build_dataset(NAME, options(seed=s)) for s in (0, 0, 1))
    assert torch.equal(a.spaces[0].x, b.spaces[0].x) and torch.equal(a.g, b.g)
    assert not torch.equal(a.spaces[0].x, c.spaces[0].x)
    assert np.array_equal(a.split_cpu, b.split_cpu)


def test_conflict_and_strength_options(data):
    none = build_dataset(NAME, options(conflict=0.5))
    assert none.counts_table()["train"][:2] == [600, 600]
    flat = build_dataset(NAME, options(cue_strength=0.0))
    assert flat.spaces[0].x[:, 0, 40:].abs().max() < 1.0  # noise only: no marker
