"""The package's shape: no import cycle, no private name used across modules, no long module."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "llmstreamer"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> set[str]:
    """The package modules ``name`` imports anywhere: at the top, in functions, under TYPE_CHECKING."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = name if _is_package(name) else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = [f"{source}.{alias.name}" for alias in node.names] + [source]
        else:
            continue
        for target in targets:
            # the longest package module the target names (a module, or the module of a name)
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    # "from .x import y" also lists the package "." itself when y is a name: drop that edge
    return {t for t in out if not (_is_package(t) and name.startswith(t + "."))}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle() -> None:
    """No two modules of the package import each other, directly or round about, in any kind of import."""
    graph = {name: _imports(name) for name in MODULES}
    assert _cycles(graph) == []


def test_the_import_walk_sees_lazy_and_type_checking_imports() -> None:
    """The walk counts imports inside functions and under TYPE_CHECKING (else the check above proves little)."""
    graph = {name: _imports(name) for name in MODULES}
    assert "llmstreamer.provider" in graph["llmstreamer.conversation"]  # TYPE_CHECKING only
    assert "llmstreamer._engine" in graph["llmstreamer.conversation"]  # inside send()
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def _subpackage(name: str) -> str:
    """The subpackage below ``llmstreamer`` a module belongs to ('' for the top level)."""
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else ""


def _defined(name: str) -> set[str]:
    """The private names a module defines: functions, classes, globals and ``self._x`` attributes."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            out.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("_"):
            out.add(node.value)  # __slots__ entries
    return {n for n in out if n.startswith("_") and not n.startswith("__")}


def _private_uses(name: str) -> set[str]:
    """Private names ``name`` takes from other modules: imported, or read as ``obj._x`` on another object."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            out.update(a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__"))
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                out.add(node.attr)
    return out


def test_no_private_name_crosses_a_module_boundary() -> None:
    """A private name is used only in the module that defines it, or within one subpackage."""
    defined = {name: _defined(name) for name in MODULES}
    leaks = []
    for name in MODULES:
        used = _private_uses(name)
        group = {m for m in MODULES if _subpackage(m) and _subpackage(m) == _subpackage(name)} | {name}
        local = set().union(*(defined[m] for m in group))
        ours = set().union(*defined.values())  # a private name of another library (http.client's) is not ours to judge
        # a private module imported as a module ("from . import _engine") is not a private name
        leaks += [f"{name}: {attr}" for attr in sorted((used & ours) - local) if not any(m.endswith("." + attr) for m in MODULES)]
    assert leaks == []


def test_no_module_is_longer_than_the_limit() -> None:
    """Every module stays within 400 lines: one idea per module."""
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
