"""``jm1``: Just Mix Once (Giannone et al.): JTT's identification phase, then class-conditional mixup."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.hparams import Choice
from benchmark.core.registry import register_method
from benchmark.core.settings import FRACTION
from benchmark.data.batches import Batch, BatchSampler, make_batches
from benchmark.data.core import GroupDataset
from benchmark.methods.base import Method, Stage, TrainInfo
from benchmark.methods.jtt import JTT, error_set, error_set_facts, identification_epochs, oracle_partition
from benchmark.models import GroupModel

ALPHAS = ("uniform-beta", "uniform", "uniform-beta25")
MIX_LEVELS = ("latent", "input", "random")


def beta_integer(n: int, a: int, b: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of Beta(a, b) for integers a, b ≥ 1: the a-th smallest of a + b − 1 uniforms from ``generator``."""
    u = torch.rand(n, a + b - 1, generator=generator, device=generator.device)
    return u.kthvalue(a, dim=1).values


def space_sorted(data: GroupDataset, order: np.ndarray, batch_of: np.ndarray) -> np.ndarray:
    """The permutation :func:`make_batches` applies to ``order`` (by batch, then feature space, stable)."""
    return np.argsort(batch_of * len(data.spaces) + data.space_cpu[order], kind="stable")


class PartnerSampler(BatchSampler):
    """A shuffled epoch (the same batches as ``ShuffleSampler`` for the same rng) where every sample gets a
    partner of its class from the other side of ``partition`` (bool per sample id; True = P), drawn uniformly
    over the training set. Samples whose class is absent from the other side get themselves, unmixable.

    Each batch's ``attached["partner"]`` is a Batch of the partners, ordered by space; its ``extra``:
    ``partner_pos`` (row of each sample's partner in it), ``mixable``, ``in_p`` (the sample is on the P side),
    ``same_space`` (bool tensors in batch order) and ``any_cross`` (host bool: some mixable pair crosses spaces).
    """

    name = "jm1-partner"

    def __init__(self, data: GroupDataset, indices: np.ndarray, batch_size: int, partition: np.ndarray):
        super().__init__(data, indices, batch_size)
        self.side = np.asarray(partition, dtype=bool)
        key = 2 * data.y_cpu[self.indices] + self.side[self.indices]  # pools by (class, side)
        self.pool = self.indices[np.argsort(key, kind="stable")]
        self.counts = np.bincount(key, minlength=2 * data.num_classes)
        self.starts = np.cumsum(self.counts) - self.counts

    def epoch(self, rng: np.random.Generator) -> list[Batch]:
        data = self.data
        order = rng.permutation(self.indices)
        batch_of = np.arange(len(order)) // self.batch_size
        order = order[space_sorted(data, order, batch_of)]  # batch_of is unchanged: already sorted by batch
        other = 2 * data.y_cpu[order] + ~self.side[order]
        mixable = self.counts[other] > 0
        pick = self.starts[other] + (rng.random(len(order)) * self.counts[other]).astype(np.int64)
        partner = np.where(mixable, self.pool[np.minimum(pick, len(self.pool) - 1)], order)
        perm = space_sorted(data, partner, batch_of)
        partners = make_batches(data, partner[perm], batch_of)
        pos = np.empty_like(perm)
        pos[perm] = np.arange(len(perm))
        same = data.space_cpu[order] == data.space_cpu[partner]
        any_cross = np.bincount(batch_of, weights=mixable & ~same) > 0
        host = np.stack([pos - batch_of * self.batch_size, mixable, self.side[order], same])
        columns = torch.from_numpy(host).to(data.device).split([len(b) for b in partners], dim=1)
        batches = make_batches(data, order, batch_of)
        for batch, part, col, cross in zip(batches, partners, columns, any_cross.tolist()):
            batch.attached["partner"] = part
            batch.extra.update(partner_pos=col[0], mixable=col[1].bool(), in_p=col[2].bool())
            batch.extra.update(same_space=col[3].bool(), any_cross=cross)
        return batches


@register_method("jm1")
class JM1(Method):
    """Stage "identify" is JTT's stage 1 (ERM; the error set E of an eval-mode pass is the partition P, the
    rest P̄). Stage "mix": a fresh model; each batch sample gets a same-class partner from the other partition
    drawn uniformly over the training set (:class:`PartnerSampler`; a class absent from the other partition
    is left unmixed), h = α·h_P + (1 − α)·h_P̄ with one α per sample from ``self.info.generator``, label the
    shared class, loss = mean CE over the mixed batch. Logs the mean α over mixed samples and their fraction.
    Needs no training group labels unless ``oracle`` (which reads them: its runs record "training groups", while the
    class attributes keep its default's "classes").

    Args:
        id_fraction: phase-I epochs as a fraction of the budget (as JTT's ``id_fraction``).
        alpha: "uniform-beta" = U(0,1) for the first ⌈E₂/2⌉ of the E₂ mix epochs, then Beta(5,2) (mean 5/7,
            leaning to the P sample: the paper's stated intent, docs/methods.md); "uniform" = U(0,1) throughout;
            "uniform-beta25" = the paper's literal Beta(2,5) in the second half (the paper's Table 7). All three are
            in the search space.
        mix_at: "latent" (mix z before the head), "input" (mix inputs of same-space pairs, then encode;
            cross-space pairs fall back to latent), "random" (latent or input per step, a coin from
            ``self.info.generator`` drawn for the whole epoch in ``on_epoch_start``, so no sync in the step).
        oracle: P = training samples of the dataset's minority groups (``oracle_partition``); phase I is then
            skipped (the paper's optional phase I) and the mix stage gets the whole budget.
    """

    space = {
        "id_fraction": JTT.space["id_fraction"],
        "alpha": Choice(("uniform-beta", "uniform", "uniform-beta25")),
        "mix_at": Choice(MIX_LEVELS),
    }
    choices = {"alpha": ALPHAS, "mix_at": MIX_LEVELS}
    bounds = {"id_fraction": FRACTION}

    def __init__(
        self,
        model: GroupModel,
        info: TrainInfo,
        id_fraction: float = 0.25,
        alpha: str = "uniform-beta",
        mix_at: str = "latent",
        oracle: bool = False,
    ):
        super().__init__(model, info)
        self.alpha, self.mix_at, self.oracle = alpha, mix_at, oracle
        self.first = 0 if oracle else identification_epochs(info.epochs, id_fraction)
        self.mixing, self.use_beta, self.coins, self.step = False, False, [False], 0
        self.partition: np.ndarray | None = None

    def labels_read(self) -> str:
        """Training groups with ``oracle`` (its partition is the minority groups' samples), else classes."""
        return "training groups" if self.oracle else super().labels_read()

    def stages(self) -> list[Stage]:
        mix = Stage("mix", self.info.epochs - self.first, fresh_model=True)
        return [mix] if self.oracle else [Stage("identify", self.first), mix]

    def on_stage_start(self, stage: Stage, data: GroupDataset) -> dict:
        if stage.name != "mix":
            return {}
        self.partition = oracle_partition(self, data) if self.oracle else error_set(self, data)
        stage.sampler = partial(PartnerSampler, partition=self.partition)
        self.mixing = True
        return {"partition": "oracle" if self.oracle else "error-set", **error_set_facts(self.partition, data)}

    def on_epoch_start(self, epoch: int, data: GroupDataset) -> None:
        mix_epoch, mix_epochs = epoch - self.first, self.info.epochs - self.first  # mix_epoch counts from 1
        self.use_beta = self.alpha != "uniform" and 2 * (mix_epoch - 1) >= mix_epochs
        if self.mixing and self.mix_at == "random":  # one host read per epoch, outside the step
            gen = self.info.generator
            self.coins = (torch.rand(self.info.steps_per_epoch, generator=gen, device=gen.device) < 0.5).tolist()
        self.step = 0

    def draw_alpha(self, n: int) -> torch.Tensor:
        """α (the P-side weight) for n samples under the current epoch's schedule."""
        gen = self.info.generator
        if self.use_beta:
            return beta_integer(n, *((5, 2) if self.alpha == "uniform-beta" else (2, 5)), gen)
        return torch.rand(n, generator=gen, device=gen.device)

    def mixed_latents(self, data: GroupDataset, batch: Batch, alpha: torch.Tensor, at_input: bool) -> torch.Tensor:
        """h = α·h_P + (1 − α)·h_P̄ per batch sample (unmixable samples: their own z), mixing the inputs of
        same-space pairs when ``at_input`` and latents otherwise."""
        ex = batch.extra
        w = torch.where(ex["in_p"], alpha, 1 - alpha).masked_fill(~ex["mixable"], 1.0)[:, None]  # own weight
        partner = batch.attached["partner"]
        if not at_input:  # one encoder call per space for the batch and its partners
            z, z_partner = self.model.encode_together(data, [batch, partner])
            return w * z + (1 - w) * z_partner[ex["partner_pos"]]
        z = self.encode_mixed_inputs(data, batch, w)
        if not ex["any_cross"]:
            return z
        mixed = w * z + (1 - w) * self.model.encode(data, partner)[ex["partner_pos"]]
        return torch.where(ex["same_space"][:, None], z, mixed)

    def encode_mixed_inputs(self, data: GroupDataset, batch: Batch, w: torch.Tensor) -> torch.Tensor:
        """Latents of w·x + (1 − w)·x_partner for same-space pairs (others: of their own input), one
        encoder call per feature space. Inputs come from the model (:meth:`GroupModel.inputs`), so images on
        disk mix as in-memory features do."""
        ex, partner = batch.extra, batch.attached["partner"]
        starts = torch.tensor([0, *partner.space_sizes], device=w.device).cumsum(0)[:-1]
        theirs = self.model.inputs(data, partner)
        parts = []
        for s, (encoder, x, pos, same, ws) in enumerate(
            zip(
                self.model.encoders,
                self.model.inputs(data, batch),
                *(t.split(batch.space_sizes) for t in (ex["partner_pos"], ex["same_space"], w)),
            )
        ):
            if len(x):
                # a same-space partner sits in the partner batch's segment of space s
                at = (pos - starts[s]).clamp(0, max(len(theirs[s]) - 1, 0))
                other = theirs[s][at] if len(theirs[s]) else x
                shape = (-1, *[1] * (x.dim() - 1))
                other = torch.where(same.view(shape), other, x)
                ws = ws.view(shape)
                parts.append(encoder(ws * x + (1 - ws) * other))
        return torch.cat(parts)

    def loss(self, data, batch):
        if not self.mixing:
            return F.cross_entropy(self.model(data, batch), batch.y), {}
        at_input = self.mix_at == "input" or (self.mix_at == "random" and self.coins[self.step % len(self.coins)])
        self.step += 1
        alpha = self.draw_alpha(len(batch))
        h = self.mixed_latents(data, batch, alpha, at_input)
        mixed = batch.extra["mixable"].to(alpha.dtype)
        logs = {"alpha_mean": (alpha * mixed).sum() / mixed.sum().clamp_min(1), "mixed_fraction": mixed.mean()}
        return F.cross_entropy(self.model.head(h), batch.y), logs
