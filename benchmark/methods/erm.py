"""``erm``: empirical risk minimisation, the mean cross-entropy over the batch."""

from __future__ import annotations

import torch.nn.functional as F

from benchmark.core.registry import register_method
from benchmark.methods.base import Method


@register_method("erm")
class ERM(Method):
    """Mean cross-entropy; the baseline every leaderboard compares against. Uses no group labels."""

    def loss(self, data, batch):
        loss = F.cross_entropy(self.model(data, batch), batch.y)
        return loss, {}
