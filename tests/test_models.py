"""The shared model: one encoder per feature space, each seeing only its own space's rows."""

from __future__ import annotations

import pytest
import torch
from conftest import toy_dataset

from benchmark.data.batches import eval_batches, make_batches
from benchmark.models import GroupModel, ImageCNN, SequenceCNN, VectorMLP


def test_encoders_see_only_their_space_rows(small_hetero):
    model = GroupModel(small_hetero)
    seen: dict[int, list[torch.Tensor]] = {s: [] for s in range(4)}
    for s, encoder in enumerate(model.encoders):
        encoder.register_forward_hook(lambda mod, inputs, out, s=s: seen[s].append(inputs[0].detach()))
    batch = eval_batches(small_hetero, "val", 10_000)[0]
    z = model.encode(small_hetero, batch)
    assert z.shape == (len(batch), 64)
    for s, space in enumerate(small_hetero.spaces):
        assert len(seen[s]) == 1, "one encoder call per feature space"
        mine = batch.idx[small_hetero.space[batch.idx] == s]
        assert torch.equal(seen[s][0], space.x[small_hetero.row[mine]])


def test_latents_follow_batch_order(small_hetero):
    model = GroupModel(small_hetero).eval()
    batch = eval_batches(small_hetero, "val", 10_000)[0]
    z = model.encode(small_hetero, batch)
    for i in (0, len(batch) // 2, len(batch) - 1):
        s, r = small_hetero.space[batch.idx[i]].item(), small_hetero.row[batch.idx[i]].item()
        single = model.encoders[s](small_hetero.spaces[s].x[r : r + 1])
        assert torch.allclose(z[i], single[0], atol=1e-5)


@pytest.mark.usefixtures("float64")
def test_encoding_batches_together_gives_each_its_own_latents():
    data = toy_dataset(dtype=torch.float64)
    model = GroupModel(data)
    calls = []
    for encoder in model.encoders:
        encoder.register_forward_hook(lambda mod, inputs, out: calls.append(len(inputs[0])))
    train = data.indices("train").numpy()
    vec_only = train[data.space_cpu[train] == 0][:7]  # a batch with no sample of the other spaces
    batches = make_batches(data, train[:30], [0] * 30) + make_batches(data, vec_only, [0] * len(vec_only))
    together = model.encode_together(data, batches)
    in_space = [sum(b.space_sizes[s] for b in batches) for s in range(3)]
    assert sorted(calls) == sorted(n for n in in_space if n), "one call per space present"
    for batch, z in zip(batches, together):
        assert torch.allclose(z, model.encode(data, batch), atol=1e-12)


def test_encoder_kinds_and_latent_size(small_hetero):
    model = GroupModel(small_hetero, k=64)
    kinds = [type(enc[1]) for enc in model.encoders]
    assert kinds == [SequenceCNN, ImageCNN, ImageCNN, VectorMLP]
    assert model.head.in_features == 64 and model.head.out_features == 10


def test_input_standardisation_uses_training_rows(small_hetero):
    model = GroupModel(small_hetero)
    s = 1
    rows = small_hetero.row[(small_hetero.space == s) & (small_hetero.split_code == 0)]
    x = small_hetero.spaces[s].x[rows]
    standardize = model.encoders[s][0]
    assert torch.isclose(standardize.mean, x.mean()) and torch.isclose(standardize.std, x.std())
