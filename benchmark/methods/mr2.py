"""``mr2``: MR², class-wise logit margins and a representation margin from per-class feature statistics
(docs/methods.md, "mr2")."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from benchmark.core.hparams import LogUniform, Uniform
from benchmark.core.registry import register_method
from benchmark.core.settings import AT_LEAST_0, POSITIVE, Range
from benchmark.methods.base import Method, TrainInfo
from benchmark.models import GroupModel

MIN_SPREAD = 1.05
"""The least ratio of the largest class margin γ to the smallest at which MR²'s margins act: below it every class's
logits are scaled alike (within 5%), and the logit loss is cross-entropy at one temperature."""


@register_method("mr2")
class MR2(Method):
    """Margin-scaled cross-entropy plus a within-class compactness loss, driven by per-class EMAs of z statistics.

    Each step, before the loss and without gradient, the batch statistics of each class k present in the batch
    (mean μ_k over its batch samples, m_k = ‖μ_k‖², spread v_k = mean‖z − μ_k‖², ℓ2 norms as in the paper, not its
    code's ℓ5) update buffers by an EMA; a class's EMA starts from its first batch (a ``seen`` mask buffer).
    Margins: γ_k = c̄·K·(m_k+v_k)^{1/3} / Σ_j (m_j+v_j)^{1/3} over the classes seen so far, where K is the number
    of classes seen so far (decision: then equal statistics give γ_k = c̄ exactly and the margins average to c̄
    over the seen classes, the paper's budget); unseen classes get γ = c̄. Logit loss: mean CE(logits/γ_y, y),
    the whole logit vector of a sample divided by its true class's γ. Representation loss: for each sample with at
    least one same-class partner in the batch, log(1 + Σ_{j≠i, y_j=y_i} exp(‖z_i − z_j‖² − 2s̄)) as a logsumexp
    that includes the 1 as exp(0), s̄ = mean of v_k over seen classes (detached); mean over those samples (0 if
    none). The paper sums over all same-class training samples; we use the batch. Loss = logit + λ·representation.
    Uses class labels only. Logs γ (``gamma``) and s̄ (``s_bar``).

    Not applicable (:meth:`not_applicable`) where the premise of the margins fails at the last evaluation: the
    largest γ is less than :data:`MIN_SPREAD` times the smallest (the margins do not act), or the γ do not rise with
    the classes' validation error (Spearman's ρ ≤ 0: the harder classes do not get the larger margins).

    Args:
        c_bar: c̄ > 0, the average margin.
        lam: λ ≥ 0, the weight of the representation loss. The paper gives no value; 0.01 is the best of {0.001,
            0.01, 0.1, 1} by validation worst-group accuracy on digits-hetero (seeds 0, 1, default budget and
            latent: 88.0, 88.2, 84.8, 37.0; ``python studies/scan.py --key mr2.lam --values 0.001,0.01,0.1,1
            --methods mr2 --datasets digits-hetero --seeds 0,1 --out results/scan-mr2``). λ = 1 collapses
            every seed; 0.1 (the previous default) leaves waterbirds-style's worst group near 0 (val 7.9).
        beta: β ∈ [0, 1), the EMA factor (new = β·old + (1−β)·batch).
        eps: numerical floor on m_k+v_k before the cube root, so that a class whose latents are all zero
            (dead ReLUs) gets a small positive γ instead of 0 (a guard the paper does not need).
    """

    space = {"c_bar": LogUniform(-0.5, 0.5), "lam": LogUniform(-3, 0), "beta": Uniform(0.8, 0.99)}
    bounds = {"c_bar": POSITIVE, "lam": AT_LEAST_0, "beta": Range(0, 1, high_open=True), "eps": POSITIVE}

    def __init__(
        self,
        model: GroupModel,
        info: TrainInfo,
        c_bar: float = 1.0,
        lam: float = 0.01,
        beta: float = 0.9,
        eps: float = 1e-8,
    ):
        super().__init__(model, info)
        self.c_bar, self.lam, self.beta, self.eps = c_bar, lam, beta, eps
        device, dtype = info.train_class_counts.device, torch.get_default_dtype()
        self.register_buffer("mean_sq", torch.zeros(info.num_classes, device=device, dtype=dtype))
        self.register_buffer("spread", torch.zeros(info.num_classes, device=device, dtype=dtype))
        self.register_buffer("seen", torch.zeros(info.num_classes, device=device, dtype=torch.bool))

    @torch.no_grad()
    def update_statistics(self, z: torch.Tensor, y: torch.Tensor) -> None:
        """EMA-update ‖μ_k‖² and v_k with this batch's per-class statistics (first batch of a class initialises)."""
        z = z.detach().to(self.mean_sq.dtype)
        onehot = F.one_hot(y, self.info.num_classes).to(z.dtype)
        counts = onehot.sum(0)
        mu = (onehot.T @ z) / counts.clamp_min(1)[:, None]
        spread = torch.zeros_like(counts).index_add_(0, y, (z - mu[y]).pow(2).sum(1)) / counts.clamp_min(1)
        present = counts > 0
        blend = self.beta * self.seen.to(z.dtype)  # unseen classes take the batch value outright
        self.mean_sq.copy_(torch.where(present, blend * self.mean_sq + (1 - blend) * mu.pow(2).sum(1), self.mean_sq))
        self.spread.copy_(torch.where(present, blend * self.spread + (1 - blend) * spread, self.spread))
        self.seen |= present

    def gamma(self) -> torch.Tensor:
        """Class-wise margins γ from the current EMAs: c̄·K·r_k/Σ_j r_j over seen classes, c̄ for unseen ones."""
        r = (self.mean_sq + self.spread).clamp_min(self.eps).pow(1 / 3) * self.seen
        k_seen = self.seen.sum()
        return torch.where(self.seen, self.c_bar * k_seen * r / r.sum().clamp_min(self.eps), self.c_bar)

    def not_applicable(self, data, last):
        """Why the margins did not act as MR² intends at the end of training (class docstring), in plain ASCII as
        every report format prints it; None where they did."""
        gamma = self.gamma().tolist()
        spread = max(gamma) / min(gamma)
        if spread < MIN_SPREAD:
            return (
                f"its class margins did not act: at the last evaluation the largest is {spread:.3f} times the "
                f"smallest (under {MIN_SPREAD}), as the classes' mean squared latent norms are nearly equal"
            )
        pairs = [(g, 100 - acc) for g, acc in zip(gamma, last["val"].get("classes", {}).values()) if acc is not None]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # every class equally hard: scipy warns, ρ is nan
            rho = spearmanr(*zip(*pairs)).statistic if len(pairs) > 1 else float("nan")
        if rho <= 0:  # nan (a constant side) says nothing either way
            return (
                f"its premise failed: at the last evaluation its class margins fall as the classes' validation error "
                f"rises (Spearman's rank correlation {rho:.2f}), so the easier classes get the larger margins"
            )
        return None

    def s_bar(self) -> torch.Tensor:
        """Mean EMA spread over the seen classes (0 before any class is seen)."""
        return (self.spread * self.seen).sum() / self.seen.sum().clamp_min(1)

    def representation_loss(self, z: torch.Tensor, y: torch.Tensor, s_bar: torch.Tensor) -> torch.Tensor:
        """Mean over samples with a same-class partner of logsumexp([0, ‖z_i − z_j‖² − 2s̄ over partners j])."""
        sq = z.pow(2).sum(1)
        dist = (sq[:, None] + sq[None, :] - 2 * z @ z.T).clamp_min(0)
        same = (y[:, None] == y[None, :]) & ~torch.eye(len(y), dtype=torch.bool, device=y.device)
        terms = (dist - 2 * s_bar).masked_fill(~same, float("-inf"))
        per_sample = torch.logsumexp(torch.cat([torch.zeros_like(sq)[:, None], terms], 1), 1)
        has_partner = same.any(1)
        return (per_sample * has_partner).sum() / has_partner.sum().clamp_min(1)

    def loss(self, data, batch):
        z = self.model.encode(data, batch)
        self.update_statistics(z, batch.y)
        gamma, s_bar = self.gamma(), self.s_bar()
        logits = self.model.head(z)
        logit_loss = F.cross_entropy(logits / gamma[batch.y].to(logits.dtype)[:, None], batch.y)
        loss = logit_loss + self.lam * self.representation_loss(z, batch.y, s_bar.to(z.dtype))
        return loss, {"gamma": gamma.detach(), "s_bar": s_bar.detach()}
