"""The import graph of the project's packages: no cycles, and each layer imports only the layers below.

Imports are read from the source with ``ast`` (module-level and function-level alike, since a
function-level import is still a dependency; imports under ``if TYPE_CHECKING:`` are left out,
as they never run). ``from package import name`` counts as importing ``package.name`` when that
is a module, else ``package``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

import vlmrm_core

ROOT = Path(vlmrm_core.__file__).resolve().parents[1]
PACKAGES = ("vlmrm_core", "vlmrm_studio")


def module_files(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name → file, for every module of ``packages`` (Alembic revisions left out)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                skipped |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    return skipped


def imports_of(module: str, source: str, is_package: bool, known: Mapping[str, object]) -> set[str]:
    """The modules of ``known`` that ``source`` (the text of ``module``) imports."""

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {m for m in map(resolve, targets) if m is not None and m != module}
    return found


def import_graph(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    files = module_files(root, packages)
    return {
        module: imports_of(
            module, path.read_text(encoding="utf-8"), path.name == "__init__.py", files
        )
        for module, path in files.items()
    }


@functools.cache
def project_graph() -> dict[str, set[str]]:
    """The project's import graph, parsed once for all the tests of this module (read only)."""
    return import_graph()


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_reads_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import b\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from .sub import b\n"
    )
    (pkg / "sub" / "b.py").write_text("import pkg.a\nfrom pkg.c import thing\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, ["pkg"])
    assert graph["pkg.a"] == {"pkg.sub.b"}  # the TYPE_CHECKING import does not count
    assert graph["pkg.sub.b"] == {"pkg.a", "pkg.c"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.b"}
    assert cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_import_cycles() -> None:
    found = cycles(project_graph())
    assert found == [], (
        "import cycles (break them: move the shared piece down a layer): "
        + "; ".join(" <-> ".join(cycle) for cycle in found)
    )


# ----------------------------------------------------------------------------------- layers
# Each folder of vlmrm_core may import only the folders listed for it (and the leaf modules).
LEAVES = {
    "vlmrm_core",
    "vlmrm_core.errors",
    "vlmrm_core.enums",
    "vlmrm_core.settings",
    "vlmrm_core.terminal",
    "vlmrm_core.headless",
    "vlmrm_core.frames",
    "vlmrm_core._torchvision_compat",
    "vlmrm_core.plain_json",
    "vlmrm_core.security",
    "vlmrm_core.reward.spec",  # what a reward is: plain validated data, imports only leaves
}
LAYERS: dict[str, set[str]] = {
    "metrics": set(),
    "clip": set(),
    "envs": set(),
    "reward": {"clip", "metrics"},
    "store": {"reward", "clip"},
    "sources": {"envs", "store"},
    "wrappers": {"reward", "envs"},
    "judge": {"reward", "clip", "store"},
    "services": {"reward", "clip", "metrics", "store", "sources", "envs", "judge"},
    "training": {"reward", "clip", "metrics", "store", "sources", "envs", "wrappers", "services"},
    "scale": {"reward", "clip", "store", "training", "services", "sources"},
    "cli": {
        "reward", "clip", "metrics", "store", "sources", "envs", "wrappers", "services",
        "training", "scale", "judge",
    },
}  # fmt: skip
"""Folder → the folders it may import (besides :data:`LEAVES`)."""


def _folder(module: str) -> str | None:
    if module in LEAVES:
        return None
    parts = module.split(".")
    if parts[0] != "vlmrm_core" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in LAYERS else None


def layer_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """``a -> b`` for each import that goes sideways or up a layer."""
    wrong = []
    for module, targets in sorted(graph.items()):
        folder = _folder(module)
        for target in sorted(targets):
            if target.startswith("vlmrm_studio") and module.startswith("vlmrm_core"):
                wrong.append(f"{module} -> {target} (the library never imports the app)")
                continue
            if folder is None:
                continue
            target_folder = _folder(target)
            if target_folder is None or target_folder == folder:
                continue
            if target_folder not in LAYERS[folder]:
                wrong.append(f"{module} -> {target}")
    return wrong


def test_the_layer_check_finds_upward_imports() -> None:
    graph = {
        "vlmrm_core.metrics.epic": {"vlmrm_core.reward.math", "vlmrm_core.errors"},
        "vlmrm_core.reward.math": {"vlmrm_core.metrics.epic"},
        "vlmrm_core.services.demo": {"vlmrm_studio.widgets.text"},
    }
    assert layer_violations(graph) == [
        "vlmrm_core.metrics.epic -> vlmrm_core.reward.math",
        "vlmrm_core.services.demo -> vlmrm_studio.widgets.text (the library never imports the app)",
    ]


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below(folder: str) -> None:
    graph = {m: t for m, t in project_graph().items() if _folder(m) == folder}
    wrong = layer_violations(graph)
    assert wrong == [], (
        f"vlmrm_core/{folder}/ may import only {sorted(LAYERS[folder]) or 'the leaf modules'}: "
        + "; ".join(wrong)
    )
