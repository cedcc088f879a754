"""Loading what registers methods and datasets: the built-in packages, installed entry points, and plugins given
as a ``.py`` file or a dotted module name (``bench run --plugin path/to/file.py`` / ``--plugin package.module``;
entry-point groups ``benchmark.methods`` and ``benchmark.datasets``).

It sits above the methods and datasets it imports; :mod:`benchmark.core.registry` below them only holds names.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import benchmark.data  # noqa: F401  (registers the built-in datasets)
import benchmark.methods  # noqa: F401  (registers the built-in methods)
from benchmark.core.errors import BenchError
from benchmark.core.registry import DATASETS, METHODS
from benchmark.data.sources import refuse_symlink_loop


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
    fails to import, calls ``sys.exit`` at import or registers no method and no dataset is an error."""
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
            _import(spec, lambda: module_spec.loader.exec_module(module))
        except BenchError:
            del sys.modules[module_name]
            raise
    else:
        if spec in sys.modules:
            return
        _import(spec, lambda: importlib.import_module(spec))
    if len(METHODS.names()) + len(DATASETS.names()) == registered:
        raise BenchError(
            f"plugin {spec} registers no method or dataset (decorate a class with @register_method or"
            " @register_dataset)"
        )


def _import(spec: str, load) -> None:
    """Run ``load``, the import of the plugin ``spec``: whatever it raises, a ``sys.exit`` included, becomes one
    BenchError line naming the plugin."""
    try:
        load()
    except BenchError:
        raise
    except SystemExit as exc:
        code = "" if exc.code is None else repr(exc.code)
        raise BenchError(f"plugin {spec} called sys.exit({code}) at import") from None
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name and (spec + ".").startswith(exc.name + "."):
            raise BenchError(f"plugin module not found: {spec} ({exc})") from exc  # not a module it imports
        message = next(iter(str(exc).strip().splitlines()), "")
        raise BenchError(f"plugin {spec} failed to import: {type(exc).__name__}: {message}") from exc


def load_plugins(plugins: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Import the built-ins (imported with this module), installed entry points and ``plugins``; return the plugins
    with file paths made absolute, so that worker processes can load them too (loading twice is harmless)."""
    load_entry_points()
    for plugin in plugins:
        if plugin.endswith(".py"):
            refuse_symlink_loop(Path(plugin), f"plugin file {plugin}")  # before resolve(), which fails on a loop
    plugins = tuple(str(Path(p).resolve()) if p.endswith(".py") else p for p in plugins)
    for plugin in plugins:
        load_plugin(plugin)
    return plugins
