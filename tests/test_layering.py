"""The package's import layering: data → models → methods → trainer → runner → sweep → api → cli, with the
small shared modules below. A module may import only modules of lower layers (its own subpackage aside), at
module level or inside a function; annotation-only imports under ``TYPE_CHECKING`` do not count. A new import
against the grain fails here with the edge named."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"
LAYERS = [
    {"errors"},
    {
        "settings",
        "registry",
        "store",
        "stats",
        "metrics",
        "hparams",
        "selection",
        "plots",
        "environment",
        "tensorboard_log",
        "devices",
    },
    {"tables", "classwise", "step_breakdown"},
    {"data"},
    {"models"},
    {"config", "methods"},
    {"evaluation"},
    {"plugins", "trainer", "runs"},
    {"aggregate", "stacked"},
    {"report_rows", "validity", "report_rules"},
    {"report_html"},
    {"runner", "report", "profile", "plan", "capacity"},
    {"launchers", "progress"},
    {"sweep"},
    {"api"},
    {"cli"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def unit(module: str) -> str:
    """The layer unit of ``benchmark.x.y``: ``x`` (a module or subpackage of the package)."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    """The ``benchmark.*`` modules ``path`` imports anywhere, except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    annotations_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("benchmark."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("benchmark.")}
    return found


def modules() -> dict[str, Path]:
    """Every module of the package but its facade ``__init__`` (which re-exports the API lazily)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts != ("benchmark", "__init__"):
            found[".".join(p for p in parts if p != "__init__")] = path
    return found


def test_every_module_has_a_layer():
    assert {unit(m) for m in modules()} == set(RANK)


def test_imports_only_go_down_the_layers():
    back_edges = []
    for module, path in sorted(modules().items()):
        for target in sorted(imports(path)):
            if unit(target) != unit(module) and RANK[unit(target)] >= RANK[unit(module)]:
                back_edges.append(f"{module} imports {target}")
    assert not back_edges, back_edges


def test_the_checker_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from benchmark.cli import app\n"
        "def f():\n    from benchmark.api import run\n"
    )
    assert imports(source) == {"benchmark.api"}
