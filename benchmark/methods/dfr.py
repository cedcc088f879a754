"""``dfr``: deep feature reweighting on held-out data (Kirichenko, Izmailov & Wilson, *Last Layer Re-Training is
Sufficient for Robustness to Spurious Correlations*, ICLR 2023), the DFR^Val_Tr variant: ERM, then the head refit
on group-balanced validation data."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.core.registry import register_method
from benchmark.core.settings import Range
from benchmark.data.core import GroupDataset
from benchmark.methods.balancing import balanced_subset
from benchmark.methods.base import Refit, Stage, TrainInfo
from benchmark.methods.erm import ERM
from benchmark.models import GroupModel

C_GRID = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)  # the inverse ℓ1 strengths the paper's code searches


def halves(labels: np.ndarray, indices: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``indices`` split into two random halves stratified by ``labels`` (of each label, ⌊n/2⌋ samples go to the
    first half), from ``generator``."""
    indices = np.asarray(indices, dtype=np.int64)
    keys = torch.rand(len(indices), generator=generator, device=generator.device, dtype=torch.float64)
    own = labels[indices]
    order = np.lexsort((keys.cpu().numpy(), own))
    counts = np.bincount(own)
    rank = np.arange(len(order)) - (np.cumsum(counts) - counts)[own[order]]
    first = rank < counts[own[order]] // 2
    return np.sort(indices[order[first]]), np.sort(indices[order[~first]])


@register_method("dfr")
class DFR(ERM):
    """Stage "erm": ERM for the run's whole budget; the model of its last epoch is kept (the paper retrains the last
    layer of the final model, without early stopping). Then the head is refit (:meth:`refit`) on the latents of the
    validation split, standardised with the training latents' mean and standard deviation:

    1. the validation split is cut in two halves A and B, stratified by group (seeded by the run);
    2. for each C in :data:`C_GRID`, an ℓ1-regularised logistic regression (scikit-learn's ``liblinear``, one
       versus rest for more than two classes) is fit on a group-balanced subsample of A (every group cut to A's
       smallest) and scored by worst-group accuracy on B; the best C wins (the first of equals);
    3. ``refits`` regressions with that C are fit on group-balanced subsamples of the whole validation split, and
       their weights and intercepts averaged into the model's head.

    The run's selection (epoch and trial) reads the chosen C's predictions on B, of a head fit without B; the
    reported test metrics are the averaged head's; ``val_all`` holds the whole validation split's metrics of that
    head, which saw it. The paper's code also searches class weights, which a group-balanced fit without training
    data leaves at 1. Reads validation group labels in training (for the refit), no training group labels.

    Args:
        refits: how many balanced subsamples' regressions are averaged into the final head (the paper's code: 20).
    """

    bounds = {"refits": Range(1, 1000)}

    def __init__(self, model: GroupModel, info: TrainInfo, refits: int = 20):
        super().__init__(model, info)
        self.refits = refits

    @classmethod
    def label_tier(cls) -> str:
        return "validation groups"

    def stages(self) -> list[Stage]:
        return [Stage("erm", self.info.epochs)]

    @torch.no_grad()
    def refit(self, data: GroupDataset) -> Refit:
        seed = int(torch.randint(2**31 - 1, (1,), generator=self.info.generator, device=self.info.generator.device))
        _, z_train = self.encode_split(data, "train")
        index, z_val = self.encode_split(data, "val")
        index = index.cpu().numpy()
        mean, scale = z_train.double().mean(0), z_train.double().std(0).clamp_min(1e-8)
        x = np.empty((len(data.y_cpu), z_val.shape[1]))
        x[index] = ((z_val.double() - mean) / scale).cpu().numpy()  # by sample id
        groups, classes = data.g_cpu, data.y_cpu

        def fit(samples: np.ndarray, c: float) -> Logistic:
            return Logistic.fit(x[samples], classes[samples], c, seed, data.num_classes)

        a, b = halves(groups, index, self.info.generator)
        tuning = balanced_subset(groups, a, self.info.generator)  # one balanced subsample of A for every C
        predictions = [fit(tuning, c).predict(x[b]) for c in C_GRID]
        scores = [worst_group_accuracy(predicted, classes[b], groups[b]) for predicted in predictions]
        best = int(np.argmax(scores))
        fits = [fit(balanced_subset(groups, index, self.info.generator), C_GRID[best]) for _ in range(self.refits)]
        self.set_head(Logistic.average(fits), mean.cpu(), scale.cpu())
        facts = {"C": C_GRID[best], "tuning_size": len(tuning), "held_out": len(b), "held_out_wga": 100 * scores[best]}
        return Refit(b, predictions[best], facts)

    def set_head(self, regression: Logistic, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """The head from a regression on standardised latents, undone into the raw latent scale; a class no fit saw
        never wins."""
        head = self.model.head
        weight, bias = torch.as_tensor(regression.weight), torch.as_tensor(regression.bias)
        unseen = torch.isnan(bias)
        weight = torch.where(unseen[:, None], 0.0, weight) / scale
        bias = torch.where(unseen, -1e4, bias) - weight @ mean
        head.weight.copy_(weight.to(head.weight))
        head.bias.copy_(bias.to(head.bias))


@dataclass
class Logistic:
    """An ℓ1-regularised logistic regression (scikit-learn's ``liblinear``; one versus rest beyond two classes) as a
    score per class: ``weight`` (classes × latent) and ``bias``, NaN for a class it did not see; with two classes
    seen, the first's score is 0 and the second's the regression's."""

    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, c: float, seed: int, num_classes: int) -> Logistic:
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        model = LogisticRegression(C=c, solver="liblinear", random_state=seed, **l1_penalty())
        weight, bias = np.full((num_classes, x.shape[1]), np.nan), np.full(num_classes, np.nan)
        if len(np.unique(y)) <= 2:
            model.fit(x, y)
            weight[model.classes_] = np.vstack([np.zeros_like(model.coef_), model.coef_])
            bias[model.classes_] = np.concatenate([[0.0], model.intercept_])
        else:
            ovr = OneVsRestClassifier(model).fit(x, y)
            weight[ovr.classes_] = np.vstack([estimator.coef_ for estimator in ovr.estimators_])
            bias[ovr.classes_] = np.concatenate([estimator.intercept_ for estimator in ovr.estimators_])
        return cls(weight, bias)

    @classmethod
    def average(cls, fits: list[Logistic]) -> Logistic:
        """Each class's mean weights and bias over the fits that saw it (NaN where none did)."""
        weight, bias = np.stack([f.weight for f in fits]), np.stack([f.bias for f in fits])
        seen = (~np.isnan(bias)).sum(0)
        mean_bias = np.where(seen > 0, np.nansum(bias, 0) / np.maximum(seen, 1), np.nan)
        mean_weight = np.where(seen[:, None] > 0, np.nansum(weight, 0) / np.maximum(seen, 1)[:, None], np.nan)
        return cls(mean_weight, mean_bias)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class of highest score per row (never an unseen class)."""
        scores = x @ np.nan_to_num(self.weight).T + np.where(np.isnan(self.bias), -np.inf, self.bias)
        return scores.argmax(1)


def l1_penalty() -> dict:
    """scikit-learn's argument for an ℓ1 penalty: ``l1_ratio=1`` from 1.8 on, ``penalty="l1"`` before."""
    from sklearn import __version__

    return {"l1_ratio": 1.0} if tuple(int(part) for part in __version__.split(".")[:2]) >= (1, 8) else {"penalty": "l1"}


def worst_group_accuracy(predicted: np.ndarray, classes: np.ndarray, groups: np.ndarray) -> float:
    """The lowest accuracy over the groups present."""
    hits = (predicted == classes).astype(np.float64)
    counts = np.bincount(groups)
    present = counts > 0
    return float((np.bincount(groups, weights=hits)[present] / counts[present]).min())
