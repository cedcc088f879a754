"""Registries and plugin loading from files, modules and entry points."""

from __future__ import annotations

import sys
import textwrap

import pytest

from benchmark.core.errors import BenchError
from benchmark.core.registry import METHODS, Registry
from benchmark.plugins import load_entry_points, load_plugin

PLUGIN = """
from benchmark.methods.base import Method
from benchmark.core.registry import register_method

@register_method("{name}")
class Plugged(Method):
    def loss(self, data, batch):
        raise NotImplementedError
"""


def test_unknown_name_lists_known():
    registry = Registry("method", "none")
    registry.register("b")(type("B", (), {}))
    registry.register("a")(type("A", (), {}))
    with pytest.raises(BenchError, match="unknown method 'c'; known: a, b"):
        registry.get("c")


def test_registering_two_classes_under_one_name_fails():
    registry = Registry("method", "none")
    registry.register("x")(type("X1", (), {}))
    with pytest.raises(BenchError, match="registered twice"):
        registry.register("x")(type("X2", (), {}))


def test_plugin_from_file(tmp_path):
    path = tmp_path / "my_plugin.py"
    path.write_text(PLUGIN.format(name="from-file"))
    load_plugin(str(path))
    load_plugin(str(path))  # loading twice is harmless
    assert "from-file" in METHODS


def test_plugin_from_module(tmp_path, monkeypatch):
    (tmp_path / "plugpkg").mkdir()
    (tmp_path / "plugpkg" / "__init__.py").write_text("")
    (tmp_path / "plugpkg" / "extra.py").write_text(PLUGIN.format(name="from-module"))
    monkeypatch.syspath_prepend(str(tmp_path))
    load_plugin("plugpkg.extra")
    assert "from-module" in METHODS


def test_plugin_errors_are_one_line(tmp_path):
    with pytest.raises(BenchError, match="plugin file not found"):
        load_plugin(str(tmp_path / "missing.py"))
    with pytest.raises(BenchError, match="plugin module not found"):
        load_plugin("no_such_module_anywhere")
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(BenchError, match="failed to import: RuntimeError: boom"):
        load_plugin(str(broken))
    empty = tmp_path / "empty.py"
    empty.write_text("import math\n")
    with pytest.raises(BenchError, match="empty.py registers no method or dataset"):
        load_plugin(str(empty))


def test_plugin_from_entry_point(tmp_path, monkeypatch):
    (tmp_path / "epplug.py").write_text(PLUGIN.format(name="from-entry-point"))
    dist = tmp_path / "epplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [benchmark.methods]
        plugged = epplug
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    load_entry_points()
    assert "from-entry-point" in METHODS
    assert "epplug" in sys.modules


def test_the_plugin_facing_names_keep_their_import_paths():
    """What a plugin imports: the registries and base classes from ``benchmark``, the distributions from
    ``benchmark.hparams`` (or ``benchmark``), the bounds from ``benchmark.settings``."""
    import benchmark
    import benchmark.core.hparams as hparams
    import benchmark.core.settings as settings
    from benchmark.data.builder import DatasetBuilder
    from benchmark.hparams import Choice, LogUniform, Uniform
    from benchmark.methods.base import Method
    from benchmark.settings import AT_LEAST_0, FRACTION, POSITIVE, SEED, Range

    assert (Choice, LogUniform, Uniform) == (hparams.Choice, hparams.LogUniform, hparams.Uniform)
    assert (Range, AT_LEAST_0, FRACTION, POSITIVE, SEED) == (settings.Range, settings.AT_LEAST_0, settings.FRACTION,
                                                            settings.POSITIVE, settings.SEED)  # fmt: skip
    assert (benchmark.Method, benchmark.DatasetBuilder, benchmark.Uniform) == (Method, DatasetBuilder, Uniform)
    assert benchmark.register_method is benchmark.core.registry.register_method
