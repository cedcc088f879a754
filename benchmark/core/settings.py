"""One scheme for every setting: training settings, method hyperparameters and dataset options.

Each has a default (whose type is the setting's type), optionally ``choices`` and a :class:`Range`. Values,
whether typed on the command line, drawn by a random-search trial or given from Python, pass through
:func:`check_settings` before anything trains, so a bad one is one :class:`~benchmark.core.errors.BenchError` line.
Floats must be finite everywhere.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Iterable, Sequence

from benchmark.core.errors import BenchError, did_you_mean


@dataclass(frozen=True)
class Range:
    """The allowed interval of a numeric setting; each end is included unless its ``*_open`` flag is set."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low == -math.inf:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(value: float) -> str:
    """``value`` as written in a range: whole numbers without a decimal point or exponent."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


AT_LEAST_0 = Range(0)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1, low_open=True, high_open=True)  # strictly between 0 and 1
SEED = Range(0, 2**32 - 1)  # what numpy's and torch's generators accept
QUICK_EPOCHS = 3  # the smoke-test budget of --quick
DEFAULT_DATASET = "digits-hetero-spurious"  # what bench run, bench profile and bm.run train on unless told otherwise
MAX_SEEDS = 1000  # seeds in one sweep
MAX_TRIALS = 1000  # random-search trials per method


def typed(key: str, value, default):
    """``value`` as the type of ``default`` (an int is accepted where a float is expected), or a BenchError."""
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise BenchError(f"bad value for {key}: {value!r} is not a {kind.__name__}")
    return value


def check_setting(key: str, value, default, choices: tuple | None = None, bound: Range | None = None):
    """``value`` checked against the type of ``default``, finiteness, ``choices`` and ``bound``; returns it typed."""
    value = typed(key, value, default)
    if isinstance(value, float) and not math.isfinite(value):
        raise BenchError(f"bad value for {key}: {value} (must be a finite number)")
    if choices is not None and value not in choices:
        raise BenchError(f"bad value for {key}: '{value}'; choose from {', '.join(map(str, choices))}")
    if bound is not None and value not in bound:
        raise BenchError(f"bad value for {key}: {value} (must be {bound})")
    return value


def check_settings(section: str, values: dict, defaults: dict, choices: dict, bounds: dict) -> dict:
    """Every entry of ``values`` checked by :func:`check_setting` under the name ``section.key``."""
    return {
        key: check_setting(f"{section}.{key}", value, defaults[key], choices.get(key), bounds.get(key))
        for key, value in values.items()
    }


def parse_setting(key: str, raw: str, default):
    """The text ``raw`` (from ``--set``) parsed as the type of ``default``: bool, int, float or str."""
    try:
        if isinstance(default, bool):
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if isinstance(default, (int, float)):
            return type(default)(raw)
        return raw
    except ValueError:
        raise BenchError(f"bad value for {key}: '{raw}' is not a {type(default).__name__}") from None


def check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """A BenchError naming the choices when ``value`` is not one of them."""
    if value not in choices:
        hint = did_you_mean(value, choices)
        raise BenchError(f"bad {option} '{value}'; choose from {', '.join(choices)}{hint}")


def check_seeds(seeds: Iterable[int], option: str = "--seeds") -> list[int]:
    """The seeds, each once and in order: at most :data:`MAX_SEEDS`, each a valid generator seed (errors name
    ``option``)."""
    seeds = list(seeds)
    if not seeds:
        raise BenchError(f"{option} is empty")
    if any(isinstance(s, bool) or not isinstance(s, numbers.Integral) or s not in SEED for s in seeds):
        raise BenchError(f"bad {option} {seeds[:5]}: seeds must be integers {SEED}")
    unique = list(dict.fromkeys(int(s) for s in seeds))
    if len(unique) > MAX_SEEDS:
        raise BenchError(f"bad {option}: more than {MAX_SEEDS} seeds")
    return unique


def split_sets(items: list[str]) -> dict[str, str]:
    """``["a.b=1", ...]`` -> ``{"a.b": "1"}``; a malformed item is an error. Keys are dotted: ``train.<setting>``,
    ``data.<option>`` (the dataset's options, ``data.seed`` included) and ``<method>.<hparam>`` for a method being
    run; :func:`apply_sets` parses each value by the type of the default it replaces."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key or not key.split(".", 1)[1] or not value:
            raise BenchError(f"bad --set '{item}': expected SECTION.KEY=VALUE, e.g. train.lr=1e-3")
        out[key.strip()] = value.strip()
    return out


def apply_sets(section: str, defaults: dict, sets: dict[str, str]) -> dict:
    """``defaults`` with the ``section.*`` keys of ``sets`` parsed over them (by the default's type); unknown keys
    list the known ones. The values still have to pass :func:`~benchmark.core.settings.check_settings`."""
    values = dict(defaults)
    for key, raw in sets.items():
        prefix, _, name = key.partition(".")
        if prefix != section:
            continue
        if name not in defaults:
            known = ", ".join(f"{section}.{k}" for k in defaults) or "none"
            hint = did_you_mean(key, [f"{section}.{k}" for k in defaults])
            raise BenchError(f"unknown setting '{key}'; known: {known}{hint}")
        values[name] = parse_setting(key, raw, defaults[name])
    return values
