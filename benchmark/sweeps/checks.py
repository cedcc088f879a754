"""How an option's value is read from the command line's text and checked: each reader or check takes the value
and the flag its errors name, and returns the value normalised or raises a one-line
:class:`~benchmark.core.errors.BenchError`."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Callable, Mapping, Sequence

from benchmark.core.errors import BenchError
from benchmark.core.settings import MAX_SEEDS, SEED, check_choice, check_seeds

MAX_COUNT = 1024  # workers, runs per device, stacked runs, threads


def names(value, flag: str) -> list[str]:
    """A list of names from ``a,b`` or a sequence; an empty list or an empty name is an error."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items]
    if not any(items):
        raise BenchError(f"{flag} is empty")
    if "" in items:
        raise BenchError(f"bad {flag} '{','.join(items)}': an empty name between commas")
    return items


def seeds_text(text: str, flag: str) -> list[int]:
    """``0,1,2`` or ``0-4`` (inclusive) or a mix: at most :data:`MAX_SEEDS` seeds, each a valid generator seed."""
    seeds: list[int] = []
    for item in names(text, flag):
        low, dash, high = item.partition("-")
        try:
            start, end = (int(low), int(high)) if dash and low else (int(item), int(item))
        except ValueError:
            raise BenchError(f"bad {flag} '{text}': expected integers like 0,1,2 or 0-4") from None
        if start not in SEED or end not in SEED:
            raise BenchError(f"bad {flag} '{text}': seeds must be {SEED}")
        if end < start:
            raise BenchError(f"bad {flag} '{text}': the range {item} ends before it starts")
        if len(seeds) + end - start + 1 > MAX_SEEDS:
            raise BenchError(f"bad {flag} '{text}': more than {MAX_SEEDS} seeds")
        seeds += range(start, end + 1)
    return list(dict.fromkeys(seeds))


def count(low: int, high: int = MAX_COUNT) -> Callable:
    """A check that a whole number (or None) lies in [low, high]."""

    def check(value, flag: str):
        if value is None:
            return None
        whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not whole or value < low or high is not None and value > high:
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise BenchError(f"bad {flag} {value}: must be {bound}")
        return int(value)

    return check


def choice(choices: Sequence[str]) -> Callable:
    """A check that the value is one of ``choices``."""

    def check(value, flag: str):
        check_choice(flag, value, choices)
        return value

    return check


def each_choice(choices: Sequence[str]) -> Callable:
    """A check that every value of a sequence is one of ``choices``; returns them as a tuple."""

    def check(values, flag: str):
        values = (values,) if isinstance(values, str) else tuple(values)
        for value in values:
            check_choice(flag, value, choices)
        return values

    return check


def seeds(value, flag: str) -> list[int] | None:
    """The seeds, each once and in order (None stays None)."""
    return None if value is None else check_seeds(value, flag)


def folder(value, flag: str) -> Path:
    """A folder to write into: a non-empty path."""
    if not str(value).strip():
        raise BenchError(f"bad {flag} '{value}': give a folder (e.g. results)")
    return Path(value)


def sets(value, flag: str) -> tuple[str, ...]:
    """``{"train.lr": 1e-3}`` or ``["train.lr=1e-3"]`` as ``KEY=VALUE`` strings, parsed like ``--set``."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(f"{key}={str(item).lower() if isinstance(item, bool) else item}" for key, item in value.items())
    return (value,) if isinstance(value, str) else tuple(value)


def strings(value, flag: str) -> tuple[str, ...]:
    """One string or a sequence of them, as a tuple."""
    return (value,) if isinstance(value, str) else tuple(value)


def as_is(value, flag: str):
    """The value unchanged: an option without a check."""
    return value
