"""``nc-frozen``: a frozen head from normalised majority-cell means, group CE and group mean alignment (Lu et al.)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.core.hparams import LogUniform
from benchmark.core.registry import register_method
from benchmark.core.settings import AT_LEAST_0
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Method, Stage, TrainInfo, per_group_mean
from benchmark.models import GroupModel


@register_method("nc-frozen")
class NCFrozen(Method):
    """Neural-collapse-inspired frozen classifier (Lu, Chai & Wang, KDD 2024, Algorithms 1-2).

    Cells are (class y, attribute a) pairs; the majority cell of class y is the attribute value with the
    most *training* samples of y, found once from the training set (ties: the lowest attribute value).
    At each epoch start the training-set features are computed in eval mode without gradient and the
    head rows are set to w_y = mean feature of y's majority cell / its ℓ2 norm, bias 0 (a class with no
    training samples, or a zero mean, gets w_y = 0). The head is frozen (``requires_grad=False``), so the
    optimiser never sees it and weight decay never touches it.

    Loss = L_GCE + λ_align·L_align with, over the batch:
      - L_GCE = Σ over cells present in the batch of the mean cross-entropy in that cell (a sum, as in
        the paper's eq. 7; batches that miss a cell simply have fewer terms);
      - L_align = Σ_y Σ over non-majority cells (y, a) present in the batch of MSE(batch mean z of (y, a),
        batch mean z of y's majority cell), where MSE is the mean over the k latent dimensions of the
        squared difference (``F.mse_loss``'s reduction). A class whose majority cell is absent from the
        batch contributes no alignment term. Gradients flow into both means (the paper stops neither).
        This generalises the paper's binary eq. 8 (MSE(h_{y,0}, h_{y,1})) to any number of attributes.

    Needs training attribute labels (``batch.a``); ``batch.g`` is not used. Not applicable (:meth:`not_applicable`)
    where no class has training samples of two attributes (``digits-lt``, whose attribute is its class): there
    L_align is identically 0.

    Where the attribute is the feature space (``digits-hetero``: a = g = the space), the premise of a majority
    attribute per class still has a meaning: every class's majority cell is its MNIST-1D samples, so the frozen
    head rows are MNIST-1D's normalised class means and L_align pulls each other feature space's class means onto
    them, a cross-space alignment with the majority space as the anchor (as anchor-w2 aligns spaces to learned
    anchors). Measured on digits-hetero, 3 seeds, default budget: with the default ``layernorm`` latent, mean val
    worst-group accuracy 86.7 (ERM 86.0); with the ReLU latent (``relu``) the alignment kills the small encoders' units
    and every seed leaves a group at chance (``python studies/scan.py --key train.latent ...``, README).

    Args:
        lambda_align: λ_align, the weight of the group mean alignment loss (paper: 1, kept: it trains every
            group on the offline datasets with the default latent).
    """

    needs_group_labels = True
    space = {"lambda_align": LogUniform(-2, 1)}
    bounds = {"lambda_align": AT_LEAST_0}

    def __init__(self, model: GroupModel, info: TrainInfo, lambda_align: float = 1.0):
        super().__init__(model, info)
        self.lambda_align = lambda_align
        for p in model.head.parameters():
            p.requires_grad_(False)
        self.num_attrs = 0  # set from the training set in on_stage_start
        self.register_buffer("majority", torch.zeros(info.num_classes, dtype=torch.long))

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        """Find each class's majority attribute from the training counts."""
        self.num_attrs = max(len(data.attr_names), int(data.a.max()) + 1)
        train = data.indices("train")
        cells = data.y[train] * self.num_attrs + data.a[train]
        counts = torch.bincount(cells, minlength=self.info.num_classes * self.num_attrs)
        self.majority.copy_(counts.view(self.info.num_classes, self.num_attrs).argmax(1))
        return {"majority_attribute": self.majority.tolist()}

    def not_applicable(self, data, last):
        """Why the alignment had nothing to align: no class has training samples of two attributes; else None."""
        train = data.indices("train")
        cells = torch.unique(self.cells(data.y[train], data.a[train]))
        if torch.bincount(cells // self.num_attrs, minlength=self.info.num_classes).max() > 1:
            return None
        return (
            "no class has training samples of two attributes, so nc-frozen's group-mean alignment term is "
            "identically 0 and it trains cell-summed cross-entropy under a head frozen at the class means"
        )

    def cells(self, y: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return y * self.num_attrs + a

    @torch.no_grad()
    def on_epoch_start(self, epoch: int, data: GroupDataset) -> None:
        """Set the frozen head to the normalised majority-cell means of eval-mode training features."""
        num_classes = self.info.num_classes
        idx, z = self.encode_split(data, "train")
        means, _ = per_group_mean(z, self.cells(data.y[idx], data.a[idx]), num_classes * self.num_attrs)
        majority_cells = self.cells(torch.arange(num_classes, device=means.device), self.majority)
        self.model.head.weight.copy_(F.normalize(means[majority_cells], dim=1))
        self.model.head.bias.zero_()

    def loss(self, data, batch):
        num_classes, num_attrs = self.info.num_classes, self.num_attrs
        z = self.model.encode(data, batch)
        cells = self.cells(batch.y, batch.a)
        ce = F.cross_entropy(self.model.head(z), batch.y, reduction="none")
        cell_ce, _ = per_group_mean(ce, cells, num_classes * num_attrs)
        gce = cell_ce.sum()  # absent cells have mean 0
        means, counts = per_group_mean(z, cells, num_classes * num_attrs)
        means = means.view(num_classes, num_attrs, -1)
        present = (counts > 0).view(num_classes, num_attrs)
        classes = torch.arange(num_classes, device=z.device)
        mse = (means - means[classes, self.majority][:, None]).pow(2).mean(-1)  # (C, A)
        non_majority = torch.arange(num_attrs, device=z.device)[None] != self.majority[:, None]
        use = present & non_majority & present[classes, self.majority][:, None]
        align = (mse * use).sum()
        return gce + self.lambda_align * align, {"gce": gce.detach(), "align": align.detach()}
