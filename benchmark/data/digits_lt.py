"""``digits-lt``: MNIST-1D with long-tailed training classes and balanced val/test (DRO-LT, MR²).

The training split follows the exponential profile of CIFAR-LT (Cao et al. 2019, used by DRO-LT):
class c gets ``n_c = round(n_max · β^(−c/(C−1)))`` samples, so class 0 is the head with ``n_max`` and
class C−1 the tail with ``n_max/β`` (β, the imbalance factor, is N_max/N_min). Val and test hold
``n_eval`` samples of every class. Groups are the classes (g = y) and so is the attribute (a = y): there
is no spurious attribute, the "groups" a robust method balances are the classes themselves, so that
worst-group accuracy is worst-class accuracy and GroupDRO becomes class-level DRO.

Extra metrics (Samuel & Chechik 2021, §6, following Liu et al. 2019 and Kang et al. 2020): ``many`` (classes with
more than 100 training samples), ``medium`` (20–100 inclusive) and ``few`` (fewer than 20), each the
unweighted mean accuracy of the classes in that bucket (0/1 weights over the class groups).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.core.registry import register_dataset
from benchmark.core.settings import Range
from benchmark.data.builder import DatasetBuilder
from benchmark.data.core import FeatureSpace, GroupDataset
from benchmark.data.sources import mnist1d

NUM_CLASSES = 10
MANY_ABOVE = 100  # "Many": more than 100 training samples
FEW_BELOW = 20  # "Few": fewer than 20; "Medium": 20–100 inclusive
SPLIT_CODE = {"train": 0, "val": 1, "test": 2}  # benchmark.data.core.SPLITS order


def class_counts(n_max: int, imbalance: float, num_classes: int = NUM_CLASSES) -> list[int]:
    """Training samples per class: ``n_max · imbalance^(−c/(C−1))`` rounded half up, c = 0..C−1.

    Rounding (not the truncation of Cao et al.'s code) keeps the tail at exactly ``n_max/imbalance``
    when that is an integer: the floating-point 500·100^(−1) is 4.999…, which truncation would make 4.
    """
    return [math.floor(n_max * imbalance ** (-c / (num_classes - 1)) + 0.5) for c in range(num_classes)]


def shot_buckets(counts: list[int]) -> dict[str, list[float]]:
    """0/1 weights over the classes for ``many`` (> 100), ``medium`` (20–100) and ``few`` (< 20).

    All three are always declared; a bucket no class falls into has all-zero weights, which
    :func:`benchmark.core.metrics.group_metrics` reports as missing (None), never as 0 or 100.
    """
    return {
        "many": [float(n > MANY_ABOVE) for n in counts],
        "medium": [float(FEW_BELOW <= n <= MANY_ABOVE) for n in counts],
        "few": [float(n < FEW_BELOW) for n in counts],
    }


@register_dataset("digits-lt")
class DigitsLT(DatasetBuilder):
    """Long-tailed MNIST-1D: exponential class profile in train, balanced val and test; g = a = y.

    Options: ``imbalance`` β = n_max/n_min (100.0, ≥ 1; 1 is balanced), ``n_max`` training samples of
    the head class (500) and ``n_eval`` samples per class in val and in test (1000: the power computation of
    ``bench power`` put 40% of the reference's spread between methods at 200 on the evaluation of class 9, whose
    accuracy is the worst group's; at 1000 a 10-seed reference detects 1.1 points smaller differences, README).

    Why n_max = 500: the Many/Medium/Few thresholds are absolute (100 and 20 training samples, as in
    Samuel & Chechik 2021), so with ten classes n_max fixes which buckets exist. With 500 and β = 100 the training
    counts are 500, 300, 180, 108, 65, 39, 23, 14, 8, 5: four Many, three Medium and three Few classes,
    and the tail holds 5 = n_max/β. The training split is only 1242 sequences (13 batches of 100 per
    epoch against digits-hetero's 71): an ERM epoch with val and test evaluation took 0.14 s on a 2-core CPU
    (digits-hetero: 1.2 s) when val and test held 200 per class, so the default 15 epochs cost about 2 s;
    building costs more (about 5 s to generate the then 7000-sequence pool, once per process; 25,000 now).
    A CIFAR-10-LT-sized head (5000) would put even the tail at 50 samples, leaving no Few class, at ten
    times the cost; any
    n_max ≥ 1950 at β = 100 leaves Few empty.

    Construction: MNIST-1D generates ``10 · (n_max + 2·n_eval)`` sequences with the data seed (an
    equal number per class, as its generator makes them); each class is shuffled with the data seed and
    cut into test (first n_eval), val (next n_eval) and train (the next n_c); the rest is discarded.
    Splits are therefore disjoint, and for fixed (seed, n_max, n_eval) the val and test sets do not
    depend on β and a smaller β's training set contains a larger β's: runs across imbalance factors
    are compared on the same test sequences.
    """

    description = (
        "MNIST-1D sequences (1×40) with a long-tailed training split: class c has round(n_max·β^(−c/9)) "
        "training samples (n_max = 500 and β = 100 by default: 500 for digit 0 down to 5 for digit 9), "
        "while val and test hold n_eval = 1000 per class. Groups are the classes (g = a = y), so "
        "worst-group accuracy is worst-class accuracy. Extra metrics: Many (classes with > 100 training "
        "samples), Medium (20–100) and Few (< 20) mean class accuracy, as in long-tail benchmarks."
    )
    options = {"imbalance": 100.0, "n_max": 500, "n_eval": 1000}
    train_defaults = {"epochs": 15}
    bounds = {"imbalance": Range(1, 1e6), "n_max": Range(1, 100_000), "n_eval": Range(1, 10_000)}

    @classmethod
    def check_options(cls, options: dict) -> dict:
        """The declared checks, and that the tail class keeps a training sample."""
        options = super().check_options(options)
        n_max, imbalance = options["n_max"], options["imbalance"]
        tail = class_counts(n_max, imbalance)[-1]
        if tail < 1:
            raise BenchError(
                f"digits-lt: the tail class would get no training samples (n_max / imbalance = "
                f"{n_max / imbalance:.3g} rounds to 0); raise data.n_max or lower data.imbalance"
            )
        return options

    def build(self, options: dict, data_root: str | None) -> GroupDataset:
        seed, n_max, n_eval = options["seed"], int(options["n_max"]), int(options["n_eval"])
        counts = class_counts(n_max, float(options["imbalance"]))
        per_class = n_max + 2 * n_eval
        pool_x, pool_y = mnist1d(NUM_CLASSES * per_class, seed)
        rng = np.random.default_rng([seed, 0x17A1])

        chosen, split = [], []
        for c, n_train in enumerate(counts):
            members = rng.permutation(np.flatnonzero(pool_y == c))
            if len(members) < n_train + 2 * n_eval:  # the generator makes num_samples // 10 per class
                raise BenchError(f"digits-lt: MNIST-1D made {len(members)} sequences of class {c}, too few")
            sizes = {"test": n_eval, "val": n_eval, "train": n_train}
            start = 0
            for name, size in sizes.items():
                chosen.append(members[start : start + size])
                split.append(np.full(size, SPLIT_CODE[name]))
                start += size
        chosen, split = np.concatenate(chosen), np.concatenate(split)
        order = np.argsort(chosen, kind="stable")  # samples in generation order, one row each
        chosen, split = chosen[order], split[order]
        y = torch.from_numpy(pool_y[chosen])
        names = [str(c) for c in range(NUM_CLASSES)]
        return GroupDataset(
            name=self.name,
            spaces=[FeatureSpace("mnist1d", "sequence", torch.from_numpy(pool_x[chosen]).unsqueeze(1))],
            space=torch.zeros(len(chosen), dtype=torch.int64),
            row=torch.arange(len(chosen)),
            y=y,
            a=y.clone(),
            g=y.clone(),
            split_code=torch.from_numpy(split.astype(np.int64)),
            class_names=names,
            attr_names=names,
            group_names=names,
            description=self.description,
            summaries=shot_buckets(counts),
            minority=tuple(c for c, n in enumerate(counts) if n < FEW_BELOW),  # the Few classes
        )
