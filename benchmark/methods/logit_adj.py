"""``logit-adj``: the logit-adjusted loss (Menon, Jayasumana, Rawat, Jain, Veit & Kumar, *Long-tail learning via
logit adjustment*, ICLR 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.core.hparams import Uniform
from benchmark.core.registry import register_method
from benchmark.core.settings import AT_LEAST_0
from benchmark.methods.base import Method, TrainInfo
from benchmark.models import GroupModel


@register_method("logit-adj")
class LogitAdjusted(Method):
    """Cross-entropy on the adjusted logits f(x) + τ·log π, with π the training class priors
    (``info.train_class_counts`` over their sum): every class's logit is shifted by τ times its log prior, so a
    rare class must win by a larger margin in training (the paper's logit-adjusted loss, not its post-hoc logit
    adjustment). Evaluation uses the raw logits f(x) (``predict`` unchanged). τ = 0 is ERM. A class without
    training samples counts as one sample, so that its log prior stays finite (the paper does not say; such a class
    never appears as a label in training). Uses class labels only.

    Args:
        tau: τ ≥ 0, the scaling of the log priors (the paper's default 1).
    """

    space = {"tau": Uniform(0.0, 2.0)}
    bounds = {"tau": AT_LEAST_0}

    def __init__(self, model: GroupModel, info: TrainInfo, tau: float = 1.0):
        super().__init__(model, info)
        self.tau = tau
        counts = info.train_class_counts.to(torch.get_default_dtype()).clamp_min(1)
        self.register_buffer("log_prior", (counts / counts.sum()).log())

    def loss(self, data, batch):
        logits = self.model(data, batch)
        return F.cross_entropy(logits + self.tau * self.log_prior, batch.y), {}
