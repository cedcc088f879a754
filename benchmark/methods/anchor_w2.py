"""``anchor-w2``: GroupDRO over heterogeneous feature spaces with learned Gaussian class anchors, after the note
*GroupDRO with Heterogeneous Feature Spaces* (2025), §3-7 ("the note" below; docs/methods.md, "anchor-w2")."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.hparams import Choice, LogUniform
from benchmark.core.registry import register_method
from benchmark.core.settings import AT_LEAST_0, Range
from benchmark.methods.base import Method, TrainInfo, per_group_mean
from benchmark.models import GroupModel

NUCLEAR_NORMS = ("svd", "gram")
GRAM_CUTOFF = 1e-12  # Gram eigenvalues below this share of the largest count as 0: singular values ≤ 1e-6 σ_max


def nuclear_norms(matrices: torch.Tensor, how: str = "svd") -> torch.Tensor:
    """‖M‖_* of each matrix of a batch (… × n × k), in at least float32: ``svd``, the sum of ``svdvals``; ``gram``,
    the sum of the square roots of the eigenvalues of the smaller Gram matrix (M Mᵀ or Mᵀ M, in float64, σ² = λ),
    those under :data:`GRAM_CUTOFF` of the largest dropped with their gradient (at σ → 0 the square root's
    gradient is unbounded; the exact gradient U Vᵀ has no term there for the centred, padded cells here, whose
    null directions the centring and the zero rows remove). Both are exact; ``gram`` is a batched symmetric
    eigensolver instead of a batched SVD, which on CUDA runs as one batched kernel for matrices up to 32 wide."""
    if how == "svd":
        return torch.linalg.svdvals(matrices.to(torch.promote_types(matrices.dtype, torch.float32))).sum(-1)
    wide = matrices.double()
    gram = wide @ wide.mT if wide.shape[-2] <= wide.shape[-1] else wide.mT @ wide
    eigenvalues = torch.linalg.eigvalsh(gram)
    keep = eigenvalues > GRAM_CUTOFF * eigenvalues.amax(-1, keepdim=True)
    roots = torch.where(keep, eigenvalues, 1.0).sqrt() * keep
    return roots.sum(-1).to(torch.promote_types(matrices.dtype, torch.float32))


def cell_w2(
    z: torch.Tensor,
    cell: torch.Tensor,
    num_cells: int,
    n_pad: int,
    m: torch.Tensor,
    L: torch.Tensor,
    nuclear: str = "svd",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cell W2² between the batch Gaussian N(m̂, AAᵀ) of a cell and its class anchor N(m_c, L_cL_cᵀ).

    Cell j belongs to class ``j % C`` (C = len(m); ``num_cells`` is a multiple of C). With A = (Z − m̂)ᵀ/√(n−1)
    (A = 0 when n = 1), W2² = ‖m̂ − m_c‖² + ‖A‖_F² + ‖L_c‖_F² − 2‖AᵀL_c‖_*, the nuclear norm taken by one
    batched ``svdvals`` over all cells, each padded with zero rows to ``n_pad`` (≥ the largest cell) after
    centring. The padded rows are laid out class-major, so one batched product per class multiplies every cell
    of the class by its L_c without copying L per cell. ``nuclear`` says how the nuclear norms are computed
    (:func:`nuclear_norms`; the method uses ``svd``, as docs/methods.md, "anchor-w2", specifies).
    Returns the W2² per cell (0 for empty cells) and the cell counts.
    """
    C, k = m.shape
    count = torch.bincount(cell, minlength=num_cells)
    n = count.to(z.dtype)
    mean = z.new_zeros(num_cells, k).index_add_(0, cell, z) / n.clamp_min(1)[:, None]
    rows = (z - mean[cell]) / (n - 1).clamp_min(1).sqrt()[cell, None]  # rows of Aᵀ; exactly 0 when n = 1
    order = torch.argsort(cell, stable=True)
    start = torch.cumsum(count, 0) - count
    rank = torch.arange(len(cell), device=z.device) - start[cell[order]]  # position of each sample in its cell
    sorted_cells = cell[order]
    slot = (sorted_cells // C) * n_pad + rank  # the sample's row among its class's cells: (cell of class, rank)
    padded = z.new_zeros(C, num_cells // C * n_pad, k).index_put((sorted_cells % C, slot), rows[order])
    prod = (padded @ L).view(C, num_cells // C, n_pad, k)
    nuclear = nuclear_norms(prod, nuclear).T.reshape(-1)
    a_sq = z.new_zeros(num_cells).index_add_(0, cell, rows.pow(2).sum(1))
    l_sq = L.pow(2).sum((1, 2)).repeat(num_cells // C)
    w2 = (mean - m.repeat(num_cells // C, 1)).pow(2).sum(1) + a_sq + l_sq - 2 * nuclear.to(z.dtype)
    return torch.where(count > 0, w2, torch.zeros_like(w2)), count


@register_method("anchor-w2")
class AnchorW2(Method):
    """Group-weighted (CE + λ_fit·W2² anchor fit) plus λ_sep·anchor-sample CE, λ by exponentiated gradient.

    Anchors: m (C×k, init 0) and L (C×k×k, init I), S_c = L_cL_cᵀ, trained with the model. Each step, per
    group g: L_clf^g = mean CE of g's batch samples; L_fit^g = Σ over (g, c) cells present in the batch of
    W2²(N(m̂, AAᵀ), N(m_c, S_c)) from the cell's batch moments (:func:`cell_w2`, cells padded to the largest
    (group, class) cell of the batch, which the sampler counts on the host; exact ε → 0 limit of the note's
    eigen formula with its εI jitter dropped, as docs/methods.md decides; a singleton cell has A = 0 and still pays
    ‖L_c‖_F² = tr S_c, as the formula and the note's code give); L_g = L_clf^g + λ_fit·L_fit^g. L_sep = mean CE
    of the head on J samples m_c + ξL_cᵀ (ξ ~ N(0, I) from ``info.generator``) per class with label c.
    Loss = Σ_g λ_g L_g + λ_sep·L_sep with the current λ (no gradient to λ); after the optimiser step
    ``log λ_g += η·L_g`` (detached, values of this step) for groups present in the batch, λ = softmax(log λ).
    λ starts at the training group frequencies (note §7), not uniform. Logs ``lambda`` (after the update),
    ``fit`` (mean L_fit^g over present groups, or the pooled L_fit) and ``sep``.

    Defaults are the note's (λ_fit = λ_sep = 1e-3, J = 16, η = 0.01). With the note's ReLU latent, the mean term
    ‖m̂ − m_c‖² of the fit (anchors start at m_c = 0) drives the small encoders' output units to zero, after which
    that group gets no gradient and stays at chance (2 of 3 seeds on digits-hetero); with the default
    ``layernorm`` latent no unit dies and the note's λ_fit trains every group (val worst-group accuracy 84.0 over
    3 seeds, ERM 86.0; ``python studies/scan.py --key train.latent ...``, README), so λ_fit stays 1e-3.

    Args:
        lambda_fit: weight of the anchor-fitting loss.
        lambda_sep: weight of the anchor-separation loss.
        samples_per_class: J, anchor samples per class per step.
        step_size: η, the exponentiated-gradient step on λ.
        robust: False gives the note's centralised objective (§3.4): per-class batch moments pooled over
            groups, plain mean CE, no λ (an ablation).
    """

    needs_group_labels = True
    space = {
        "lambda_fit": LogUniform(-4, -1),
        "lambda_sep": LogUniform(-4, -1),
        "samples_per_class": Choice((8, 16, 32)),
        "step_size": LogUniform(-3, -1),
    }
    bounds = {
        "lambda_fit": AT_LEAST_0,
        "lambda_sep": AT_LEAST_0,
        "step_size": AT_LEAST_0,
        "samples_per_class": Range(1, 4096),
    }

    def __init__(
        self,
        model: GroupModel,
        info: TrainInfo,
        lambda_fit: float = 1e-3,
        lambda_sep: float = 1e-3,
        samples_per_class: int = 16,
        step_size: float = 0.01,
        robust: bool = True,
    ):
        super().__init__(model, info)
        self.lambda_fit, self.lambda_sep = lambda_fit, lambda_sep
        self.samples_per_class, self.step_size, self.robust = samples_per_class, step_size, robust
        self.m = nn.Parameter(torch.zeros(info.num_classes, model.k))
        self.L = nn.Parameter(torch.eye(model.k).repeat(info.num_classes, 1, 1))
        freq = info.train_group_counts.to(torch.get_default_dtype())
        self.register_buffer("log_lam", (freq / freq.sum()).log())
        self._pending: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def lam(self) -> torch.Tensor:
        """The group weights λ = softmax(log λ)."""
        return torch.softmax(self.log_lam, 0)

    def separation_loss(self) -> torch.Tensor:
        """Mean CE of the head on J samples per class drawn from the anchors, in one head call."""
        C, k, J = self.m.shape[0], self.m.shape[1], self.samples_per_class
        gen = self.info.generator
        xi = torch.randn(C, J, k, generator=gen, device=gen.device, dtype=self.m.dtype).to(self.m.device)
        samples = self.m[:, None, :] + torch.einsum("cjk,clk->cjl", xi, self.L)
        labels = torch.arange(C, device=self.m.device).repeat_interleave(J)
        return F.cross_entropy(self.model.head(samples.reshape(C * J, k)), labels)

    def loss(self, data, batch):
        z = self.model.encode(data, batch)
        ce = F.cross_entropy(self.model.head(z), batch.y, reduction="none")
        sep = self.separation_loss()
        C, G = self.info.num_classes, self.info.num_groups
        if not self.robust:
            fit = cell_w2(z, batch.y, C, len(batch), self.m, self.L)[0].sum()  # pooled cells: pad to the batch
            loss = ce.mean() + self.lambda_fit * fit + self.lambda_sep * sep
            return loss, {"fit": fit.detach(), "sep": sep.detach()}
        clf, counts = per_group_mean(ce, batch.g, G)
        n_pad = batch.max_cell or len(batch)
        fit = cell_w2(z, batch.g * C + batch.y, G * C, n_pad, self.m, self.L)[0].view(G, C).sum(1)
        group_losses = clf + self.lambda_fit * fit
        present = counts > 0
        self._pending = (group_losses.detach(), present)
        loss = (self.lam * group_losses).sum() + self.lambda_sep * sep
        mean_fit = (fit * present).sum() / present.sum().clamp_min(1)
        return loss, {"lambda": self.lam, "fit": mean_fit.detach(), "sep": sep.detach()}

    def after_step(self, batch, logs):
        if self._pending is None:
            return
        group_losses, present = self._pending
        self.log_lam += self.step_size * group_losses * present
        self._pending = None
        logs["lambda"] = self.lam
