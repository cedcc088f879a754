"""``groupdro``: online group distributionally robust optimisation (Sagawa et al., ICLR 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.core.hparams import Choice, LogUniform
from benchmark.core.registry import register_method
from benchmark.core.settings import AT_LEAST_0
from benchmark.methods.base import Method, TrainInfo, per_group_mean
from benchmark.models import GroupModel


@register_method("groupdro")
class GroupDRO(Method):
    """Minimise the q-weighted sum of per-group mean losses, with q updated by exponentiated gradient.

    Each step: per-group mean loss L_g over the batch; adjusted a_g = L_g + C/√n_g (n_g training
    count); ``log q_g += η·a_g`` for groups present in the batch; q = softmax(log q); loss = Σ_g q_g L_g
    with the updated q (no gradient to q). Absent groups are neither updated nor counted, unless
    ``adjust_absent``: the reference ``loss.py`` (group_DRO) adds η·C/√n_g to every group's log-weight each
    step, groups absent from the batch included (their loss counts as 0); the paper does not say.

    Args:
        step_size: η, the exponentiated-gradient step on the group weights.
        adjustment: C, the generalisation adjustment (0 disables it).
        adjust_absent: also apply the adjustment to groups absent from the batch, as the reference code
            does (default false: only groups present in the batch move).
    """

    needs_group_labels = True
    space = {
        "step_size": LogUniform(-3, -1),
        "adjustment": Choice((0.0, 1.0, 2.0, 3.0, 4.0)),
        "train.weight_decay": LogUniform(-4, 0),
    }
    bounds = {"step_size": AT_LEAST_0, "adjustment": AT_LEAST_0}

    def __init__(
        self,
        model: GroupModel,
        info: TrainInfo,
        step_size: float = 0.01,
        adjustment: float = 0.0,
        adjust_absent: bool = False,
    ):
        super().__init__(model, info)
        self.step_size = step_size
        self.adjustment = adjustment
        self.adjust_absent = adjust_absent
        counts = info.train_group_counts.to(torch.get_default_dtype())
        self.register_buffer("adjust", adjustment / counts.clamp_min(1).sqrt())
        self.register_buffer("log_q", torch.zeros(info.num_groups, device=counts.device))

    def group_weights(self, group_losses: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Advance log q by one exponentiated-gradient step on present groups (the adjustment on every group when
        ``adjust_absent``); return q = softmax(log q)."""
        if self.adjust_absent:
            self.log_q += self.step_size * (group_losses.detach() * present + self.adjust)
        else:
            self.log_q += self.step_size * (group_losses.detach() + self.adjust) * present
        return torch.softmax(self.log_q, 0)

    def loss(self, data, batch):
        losses = F.cross_entropy(self.model(data, batch), batch.y, reduction="none")
        group_losses, counts = per_group_mean(losses, batch.g, self.info.num_groups)
        q = self.group_weights(group_losses, counts > 0)
        return (q * group_losses).sum(), {"q": q}
