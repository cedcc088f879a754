"""anchor-w2 (docs/methods.md): the W2² against sqrtm/eigen references, the λ update, the ERM and centralised limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from conftest import make_info, toy_dataset

import benchmark.methods.anchor_w2  # noqa: F401  (registers the method)
from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS
from benchmark.core.selection import selected
from benchmark.data.batches import StratifiedSampler, eval_batches
from benchmark.methods.anchor_w2 import NUCLEAR_NORMS, AnchorW2, cell_w2
from benchmark.models import GroupModel
from benchmark.runs.spec import RunSpec, TrainConfig
from benchmark.training.engine import train


def make_method(data, k: int = 6, seed: int = 0, **hparams) -> AnchorW2:
    info = make_info(data, epochs=1, seed=seed)
    torch.manual_seed(0)
    method = METHODS.get("anchor-w2")(GroupModel(data, k=k), info, **hparams)
    with torch.no_grad():  # anchors away from their init, so every term of W2² matters
        method.m.normal_(0, 0.5)
        method.L.add_(0.3 * torch.randn_like(method.L))
    return method


def psd_sqrt_eig(M: np.ndarray) -> np.ndarray:
    w, V = np.linalg.eigh((M + M.T) / 2)
    return (V * np.sqrt(np.clip(w, 0, None))) @ V.T


def w2_eigen(m1, S1, m2, S2) -> float:
    """The note's formula with eigen square roots, eigenvalues clamped at 0 (ε = 0)."""
    r = psd_sqrt_eig(S1)
    return float(((m1 - m2) ** 2).sum() + np.trace(S1) + np.trace(S2) - 2 * np.trace(psd_sqrt_eig(r @ S2 @ r)))


def w2_sqrtm(m1, S1, m2, S2) -> float:
    """W2² = ‖m1−m2‖² + tr S1 + tr S2 − 2 tr((S2^½ S1 S2^½)^½) with scipy's general matrix square root."""
    r = scipy.linalg.sqrtm(S2).real
    cross = scipy.linalg.sqrtm(r @ S1 @ r).real
    return float(((m1 - m2) ** 2).sum() + np.trace(S1) + np.trace(S2) - 2 * np.trace(cross))


def moments(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(z) == 1:
        return z[0], np.zeros((z.shape[1], z.shape[1]))
    return z.mean(0), np.cov(z, rowvar=False)


def reference_fit(z: np.ndarray, cells: np.ndarray, num_cells: int, m: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Per-cell W2² from the eigen formula (cell j has class j % C), 0 for empty cells."""
    out = np.zeros(num_cells)
    for j in range(num_cells):
        if (cells == j).any():
            c = j % len(m)
            out[j] = w2_eigen(*moments(z[cells == j]), m[c], L[c] @ L[c].T)
    return out


@pytest.mark.parametrize("n, k", [(12, 5), (3, 8)])
def test_nuclear_norm_w2_matches_matrix_square_root_formulas(float64, n, k):
    gen = torch.Generator().manual_seed(n)
    z = torch.randn(n, k, generator=gen) * 2 + 1
    m, L = torch.randn(1, k, generator=gen), torch.randn(1, k, k, generator=gen)
    w2 = cell_w2(z, torch.zeros(n, dtype=torch.long), 1, n + 4, m, L)[0].item()
    mean, cov = moments(z.numpy())
    S2 = L[0].numpy() @ L[0].numpy().T
    expected = w2_eigen(mean, cov, m[0].numpy(), S2)
    assert w2 == pytest.approx(expected, rel=1e-6)
    if n > k:  # full rank: scipy's sqrtm, with the square roots in the other order
        assert np.linalg.matrix_rank(cov) == k
        assert w2 == pytest.approx(w2_sqrtm(mean, cov, m[0].numpy(), S2), rel=1e-6)


def test_diagonal_covariances_match_the_closed_form(float64):
    """Samples m̂ ± s_i e_i give the batch covariance diag(2 s_i² / (n − 1)); with L = diag(√b),
    W2² = ‖m̂ − m‖² + Σ_i (√a_i − √b_i)²."""
    k = 4
    s = torch.tensor([0.5, 1.0, 2.0, 3.0])
    centre = torch.tensor([1.0, -2.0, 0.5, 0.0])
    z = torch.cat([centre + torch.diag(s), centre - torch.diag(s)])
    b = torch.tensor([0.3, 1.0, 4.0, 0.1])
    m = torch.tensor([[0.5, 0.5, 0.5, 0.5]])
    w2, count = cell_w2(z, torch.zeros(2 * k, dtype=torch.long), 1, 2 * k, m, torch.diag(b.sqrt())[None])
    a = 2 * s**2 / (2 * k - 1)
    expected = (centre - m[0]).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum()
    assert count.tolist() == [2 * k]
    assert w2.item() == pytest.approx(expected.item(), rel=1e-10)


@pytest.mark.parametrize("n", [1, 2, 6 + 5])
def test_gradients_are_finite_for_small_and_large_cells(float64, n):
    k = 6
    gen = torch.Generator().manual_seed(n)
    z = torch.randn(n + 3, k, generator=gen, requires_grad=True)
    cells = torch.tensor([0] * n + [1, 1, 1])  # cell 0 has n samples, cell 1 three, cells 2-3 none
    m = torch.randn(2, k, generator=gen, requires_grad=True)
    L = torch.randn(2, k, k, generator=gen, requires_grad=True)
    w2, _ = cell_w2(z, cells, 4, n + 3, m, L)
    w2.sum().backward()
    assert torch.isfinite(w2).all()
    for tensor in (z, m, L):
        assert torch.isfinite(tensor.grad).all()
    assert z.grad[:n].abs().sum() > 0


def test_padded_batched_cells_equal_a_per_cell_loop(float64):
    gen = torch.Generator().manual_seed(1)
    C, k, num_cells = 3, 4, 9
    cells = torch.tensor([0, 4, 4, 0, 2, 4, 0, 7, 4, 0, 4, 8, 8, 0])  # cells of size 5, 5, 1, 1, 2; four empty
    z = torch.randn(len(cells), k, generator=gen).requires_grad_()
    m = torch.randn(C, k, generator=gen).requires_grad_()
    L = torch.randn(C, k, k, generator=gen).requires_grad_()
    batched, counts = cell_w2(z, cells, num_cells, len(cells), m, L)
    loop = []
    for j in range(num_cells):
        zc, c = z[cells == j], j % C
        if len(zc) == 0:
            loop.append(torch.zeros(()))
            continue
        A = (zc - zc.mean(0)).T / math.sqrt(max(len(zc) - 1, 1))
        nuclear = torch.linalg.svdvals(A.T @ L[c]).sum()
        loop.append(((zc.mean(0) - m[c]) ** 2).sum() + (A**2).sum() + (L[c] ** 2).sum() - 2 * nuclear)
    loop = torch.stack(loop)
    assert counts.tolist() == [5, 0, 1, 0, 5, 0, 0, 1, 2]
    assert torch.allclose(batched, loop, rtol=1e-10, atol=1e-12)
    assert np.allclose(
        batched.detach().numpy(),
        reference_fit(z.detach().numpy(), cells.numpy(), 9, m.detach().numpy(), L.detach().numpy()),
    )
    weights = torch.randn(num_cells, generator=gen)
    grads = torch.autograd.grad((weights * batched).sum(), (z, m, L))
    loop_grads = torch.autograd.grad((weights * loop).sum(), (z, m, L))
    for g, h in zip(grads, loop_grads):
        assert torch.isfinite(g).all() and torch.allclose(g, h, rtol=1e-8, atol=1e-10)


def test_zero_weights_with_stratified_batches_is_erm(float64):
    data = toy_dataset(dtype=torch.float64)
    method = make_method(data, lambda_fit=0.0, lambda_sep=0.0, step_size=0.0)
    train_idx = data.indices("train").numpy()
    counts = data.group_counts("train")
    assert counts.tolist() == [24, 12, 6]  # batches of 7 hold exactly 4, 2, 1: the training proportions
    batches = StratifiedSampler(data, train_idx, 7).epoch(np.random.default_rng(0))
    for batch in batches:
        assert torch.bincount(batch.g, minlength=3).tolist() == [4, 2, 1]
        loss, logs = method.loss(data, batch)
        method.after_step(batch, logs)
        erm = F.cross_entropy(method.model(data, batch), batch.y).item()
        assert loss.item() == pytest.approx(erm, rel=1e-12)
    assert torch.allclose(method.lam, counts / counts.sum(), rtol=1e-12)


def test_lambda_update_is_softmax_of_log_frequency_plus_step(float64):
    data = toy_dataset(dtype=torch.float64)
    eta, lambda_fit, lambda_sep = 0.7, 0.5, 0.3
    method = make_method(data, lambda_fit=lambda_fit, lambda_sep=lambda_sep, step_size=eta)
    batch = eval_batches(data, "train", 10_000)[0]
    keep = batch.g != 1  # group 1 absent: no update
    sub = type(batch)(
        batch.idx[keep], (batch.space_sizes[0], 0, batch.space_sizes[2]), batch.y[keep], batch.a[keep], batch.g[keep]
    )
    loss, logs = method.loss(data, sub)
    z = method.model.encode(data, sub).detach().numpy()
    ce = F.cross_entropy(method.model(data, sub), sub.y, reduction="none").detach().numpy()
    groups, y = sub.g.numpy(), sub.y.numpy()
    fit = reference_fit(z, groups * 3 + y, 9, method.m.detach().numpy(), method.L.detach().numpy()).reshape(3, 3)
    group_losses = np.array([ce[groups == g].mean() + lambda_fit * fit[g].sum() if g != 1 else 0.0 for g in range(3)])
    freq = data.group_counts("train").numpy() / data.group_counts("train").sum().item()
    assert loss.item() == pytest.approx(freq @ group_losses + lambda_sep * logs["sep"].item(), rel=1e-6)
    assert np.allclose(logs["lambda"].numpy(), freq, rtol=1e-12)  # λ starts at the training frequencies
    loss.backward()
    with torch.no_grad():  # a plain gradient step (torch.optim would import dynamo, seconds on a busy CPU)
        for p in method.parameters():
            if p.grad is not None:  # group 1's encoder is unused
                p -= 0.1 * p.grad
    method.after_step(sub, logs)
    expected = np.exp(np.log(freq) + eta * group_losses)
    assert np.allclose(method.lam.numpy(), expected / expected.sum(), rtol=1e-6, atol=0)
    assert np.allclose(logs["lambda"].numpy(), method.lam.numpy())


def test_not_robust_is_the_centralised_objective(float64):
    data = toy_dataset(dtype=torch.float64)
    lambda_fit, lambda_sep, J = 0.4, 0.6, 5
    method = make_method(data, seed=3, lambda_fit=lambda_fit, lambda_sep=lambda_sep, samples_per_class=J, robust=False)
    batch = eval_batches(data, "train", 10_000)[0]
    state = method.info.generator.get_state()
    loss, logs = method.loss(data, batch)
    method.after_step(batch, logs)
    assert "lambda" not in logs
    z = method.model.encode(data, batch).detach().numpy()
    ce = F.cross_entropy(method.model(data, batch), batch.y).item()
    m, L = method.m.detach(), method.L.detach()
    fit = reference_fit(z, batch.y.numpy(), 3, m.numpy(), L.numpy()).sum()  # classes pooled over groups
    xi = torch.randn(3, J, 6, generator=torch.Generator().manual_seed(0).set_state(state))
    sep = np.mean(
        [F.cross_entropy(method.model.head(m[c] + xi[c] @ L[c].T), torch.full((J,), c)).item() for c in range(3)]
    )
    assert logs["fit"].item() == pytest.approx(fit, rel=1e-6)
    assert logs["sep"].item() == pytest.approx(sep, rel=1e-12)
    assert loss.item() == pytest.approx(ce + lambda_fit * fit + lambda_sep * sep, rel=1e-6)


def test_declarations_and_checks():
    cls = METHODS.get("anchor-w2")
    assert cls.needs_group_labels
    assert cls.defaults() == {
        "lambda_fit": 1e-3,
        "lambda_sep": 1e-3,
        "samples_per_class": 16,
        "step_size": 0.01,
        "robust": True,
    }
    assert set(cls.space) <= set(cls.defaults())
    with pytest.raises(BenchError, match="samples_per_class"):
        cls.check_hparams({**cls.defaults(), "samples_per_class": 0})
    with pytest.raises(BenchError, match="lambda_fit"):
        cls.check_hparams({**cls.defaults(), "lambda_fit": -1.0})


def test_end_to_end_training_on_toy():
    records = []
    spec = RunSpec("toy", {}, "anchor-w2", {}, 0, TrainConfig(epochs=2, batch_size=8))
    result = selected(train(spec, toy_dataset(), on_eval=records.append), "val-wga")
    for split in ("val", "test"):
        groups = result[split]["groups"]
        assert set(groups) == {"vec0", "img1", "seq2"} and all(v is not None for v in groups.values())
        assert all(math.isfinite(result[split][key]) for key in ("wga", "acc"))
    assert len(records) == 2 and all(math.isfinite(r["train_loss"]) for r in records)
    logs = records[-1]["logs"]
    assert sum(logs["lambda"]) == pytest.approx(1.0, abs=1e-5) and len(logs["lambda"]) == 3
    assert math.isfinite(logs["fit"]) and math.isfinite(logs["sep"])


@pytest.mark.parametrize("sizes, k", [((5, 5, 1, 2), 4), ((12, 3), 5), ((2, 9, 4), 8)])
def test_gram_nuclear_norms_equal_the_svd_ones_with_their_gradients(float64, sizes, k):
    """The Gram-eigenvalue path (a batched symmetric eigensolver) gives cell_w2's value and gradients as svdvals does,
    for cells smaller and larger than k, singletons and padding (n_pad above the largest cell)."""
    gen = torch.Generator().manual_seed(len(sizes) * k)
    cells = torch.cat([torch.full((n,), j) for j, n in enumerate(sizes)])
    C, num_cells = 2, 2 * len(sizes)
    outputs = {}
    for how in NUCLEAR_NORMS:
        gen.manual_seed(0)
        drawn = [torch.randn(shape, generator=gen) for shape in ((len(cells), k), (C, k), (C, k, k))]
        inputs = [t.requires_grad_() for t in drawn]
        w2, _ = cell_w2(inputs[0], cells, num_cells, max(sizes) + 2, *inputs[1:], nuclear=how)
        (w2 * torch.arange(1, num_cells + 1)).sum().backward()
        outputs[how] = (w2.detach(), [t.grad for t in inputs])
    (svd, svd_grads), (gram, gram_grads) = outputs["svd"], outputs["gram"]
    torch.testing.assert_close(gram, svd, rtol=1e-10, atol=1e-10)
    for a, b in zip(gram_grads, svd_grads):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-8)
