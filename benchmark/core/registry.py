"""Name -> class registries for methods and datasets.

Registering is one line next to the definition (``@register_method("erm")``); :mod:`benchmark.plugins` loads
the built-ins and plugins, which register more names when imported.
"""

from __future__ import annotations

import re
from typing import Callable, Generic, TypeVar

from benchmark.core.errors import BenchError, did_you_mean

T = TypeVar("T")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # names become folders of the results tree


class Registry(Generic[T]):
    """A name -> class mapping with a kind used in error messages ("method", "dataset")."""

    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering a class under ``name``; a second class with the same name is an error."""

        if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
            raise BenchError(
                f"{self.kind} name {name!r} is not a safe folder name: use letters, digits, '.', '_' and '-', "
                "starting with a letter or digit"
            )

        def decorator(cls: T) -> T:
            existing = self._items.get(name)
            if existing is not None and existing is not cls:
                raise BenchError(f"{self.kind} '{name}' is registered twice ({existing!r} and {cls!r})")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return decorator

    def get(self, name: str) -> T:
        """The class registered as ``name``; an unknown name lists the known ones."""
        if name not in self._items:
            hint = did_you_mean(name, self.names())
            raise BenchError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}{hint}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


METHODS: Registry = Registry("method", "benchmark.methods")
DATASETS: Registry = Registry("dataset", "benchmark.datasets")


def register_method(name: str):
    """Register a :class:`benchmark.methods.base.Method` subclass under ``name``."""
    return METHODS.register(name)


def register_dataset(name: str):
    """Register a :class:`benchmark.data.builder.DatasetBuilder` subclass under ``name``."""
    return DATASETS.register(name)
