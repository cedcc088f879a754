"""The package's import layering, by role: ``core`` (with ``hparams`` and ``settings``, its plugin-facing names)
→ ``data`` → ``models`` → ``methods`` → ``plugins`` → ``runs`` → ``report`` → ``training`` → ``profiling`` →
``sweeps`` → ``api`` → ``tools`` → ``cli``. A module may import only units of lower layers and modules of its own
unit, at module level or inside a function (annotation-only imports under ``TYPE_CHECKING`` do not count); no
modules import each other in a cycle; ``report`` imports neither torch nor the training side. A new import against
the grain fails here with the edge named."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"
LAYERS = ["core", "hparams", "settings", "data", "models", "methods", "plugins", "runs", "report", "training",
          "profiling", "sweeps", "api", "tools", "cli"]  # fmt: skip
RANK = {name: rank for rank, name in enumerate(LAYERS)}
TRAINING_SIDE = {"data", "models", "methods", "plugins", "training", "profiling", "sweeps"}


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


def test_every_subpackage_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc or "may import" in doc, f"{init} does not say what it may import"


def test_imports_only_go_down_the_layers():
    back_edges = []
    for module, path in sorted(modules().items()):
        for target in sorted(imports(path)):
            if unit(target) != unit(module) and RANK[unit(target)] >= RANK[unit(module)]:
                back_edges.append(f"{module} imports {target}")
    assert not back_edges, back_edges


def test_no_import_cycle():
    known = modules()
    graph = {m: {t for t in imports(p) if t in known and t != m} for m, p in known.items()}
    # a package's __init__ imported by its own modules is the package itself: edges into it count
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module)
            assert cycle is None, " -> ".join(cycle)


def test_report_is_free_of_torch_and_of_the_training_side():
    report = [m for m in modules() if unit(m) == "report"]
    for module in report:
        for target in imports(modules()[module]):
            assert unit(target) not in TRAINING_SIDE, f"{module} imports {target}"
    code = "import sys\n" + "".join(f"import {m}\n" for m in report) + "print('torch' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False", "importing the report package loads torch"


def test_the_checker_sees_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from benchmark.cli import app\n"
        "def f():\n    from benchmark.api import run\n"
    )
    assert imports(source) == {"benchmark.api"}
