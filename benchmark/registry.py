"""Name -> class registries for methods and datasets, and plugin loading.

Registering is one line next to the definition (``@register_method("erm")``). Plugins are modules or
files that register more names when imported: ``bench run --plugin path/to/file.py`` or
``--plugin package.module``, and installed distributions exposing the entry-point groups
``benchmark.methods`` / ``benchmark.datasets``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path
from typing import Callable, Generic, TypeVar

from benchmark.errors import BenchError

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
            raise BenchError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")
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
    """Register a :class:`benchmark.data.core.DatasetBuilder` subclass under ``name``."""
    return DATASETS.register(name)


def load_builtins() -> None:
    """Import the built-in methods and datasets and every installed entry-point plugin."""
    importlib.import_module("benchmark.methods")
    importlib.import_module("benchmark.data")
    load_entry_points()


def load_entry_points() -> None:
    """Import the modules named by installed distributions under both entry-point groups."""
    for registry in (METHODS, DATASETS):
        for entry in importlib.metadata.entry_points(group=registry.entry_point_group):
            try:
                entry.load()
            except Exception as exc:  # a broken third-party plugin must name itself
                raise BenchError(f"plugin entry point '{entry.name}' ({entry.value}) failed to load: {exc}") from exc


def load_plugin(spec: str) -> None:
    """Import a plugin given as a ``.py`` file path or a dotted module name (once per process); a plugin that
    registers no method and no dataset is an error."""
    registered = len(METHODS.names()) + len(DATASETS.names())
    if not spec.strip():
        raise BenchError("empty --plugin: give a .py file or a dotted module name")
    if not spec.endswith(".py") and not all(part.isidentifier() for part in spec.split(".")):
        raise BenchError(f"bad --plugin '{spec}': not a .py file or a dotted module name (like package.module)")
    if spec.endswith(".py"):
        path = Path(spec)
        if not path.is_file():
            raise BenchError(f"plugin file not found: {spec}")
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        module_name = f"benchmark_plugin_{path.stem}_{digest}"
        if module_name in sys.modules:
            return
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        try:
            module_spec.loader.exec_module(module)
        except BenchError:
            raise
        except Exception as exc:
            del sys.modules[module_name]
            raise BenchError(f"plugin {spec} failed to import: {type(exc).__name__}: {exc}") from exc
    else:
        if spec in sys.modules:
            return
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            raise BenchError(f"plugin module not found: {spec} ({exc})") from exc
    if len(METHODS.names()) + len(DATASETS.names()) == registered:
        raise BenchError(
            f"plugin {spec} registers no method or dataset (decorate a class with @register_method or"
            " @register_dataset)"
        )
