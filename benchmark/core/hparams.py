"""Random-search distributions that methods use to declare their hyperparameter ``space``.

Each draw is seeded by (method, hparam name, trial) alone, so adding a method or an hparam never
changes another's draws.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LogUniform:
    """10^U(low, high)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(10 ** rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Uniform:
    """U(low, high)."""

    low: float
    high: float

    def sample(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Choice:
    """One of ``options``, uniformly (integers from ``range`` give U{a..b})."""

    options: tuple

    def sample(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]


#: What every method's random search draws besides its own ``space`` (SubpopBench does the same for every
#: algorithm): the optimiser's learning rate and weight decay, so no method alone tunes them, and no two
#: trials of a method share a configuration. A method's own ``space`` entry of the same name wins (groupdro's
#: wider weight decay, part of that method).
SHARED_SPACE = {"train.lr": LogUniform(-4, -2), "train.weight_decay": LogUniform(-6, -2)}


def draw(method: str, hparam: str, trial: int, distribution) -> Any:
    """The value of ``hparam`` for ``method`` in random-search ``trial``, independent of all other draws."""
    digest = hashlib.sha256(f"{method}/{hparam}/{trial}".encode()).digest()
    return distribution.sample(np.random.default_rng(int.from_bytes(digest[:8], "little")))


def trial_values(method: str, space: dict, trial: int, fixed: set[str] = frozenset()) -> dict:
    """What random-search ``trial`` of ``method`` sets: nothing for trial 0 (the defaults), otherwise a draw for
    every name of ``space`` not in ``fixed`` (names the user set with ``--set``), in ``space``'s keys."""
    if trial == 0:
        return {}
    return {name: draw(method, name, trial, dist) for name, dist in space.items() if name not in fixed}
