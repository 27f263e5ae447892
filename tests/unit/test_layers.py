"""Imports point one way: engine -> session -> analysis -> outputs -> integrations, with no cycle.

Every import of the package is read from the source (``ast``): top-level and lazy
ones (inside functions, under ``TYPE_CHECKING``), relative ones, and strings that
name a cgmem_nb module (``importlib.import_module("cgmem_nb...")``,
``sys.modules.get(...)``, the package root's lazy map). The rules
(``docs/architecture.md``):

* the *core* modules (``config``, ``errors``, ``units``, ``categories``, ``schema``,
  ``sizing``) sit below every layer and import only each other;
* a layer imports the core, itself and the layers to its left;
* the *top* (the package root, ``facade``, ``demo``, ``__main__``) may import
  anything, and nothing but the top imports it;
* no two modules import each other, directly or around a loop.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cgmem_nb"
LAYERS = ("engine", "session", "analysis", "outputs", "integrations")
CORE = frozenset({"config", "errors", "units", "categories", "schema", "sizing"})
TOP = -1  # the rank of the package root and the top-level modules
_MODULE_STRING = re.compile(r"cgmem_nb(\.\w+)+")


def _module_name(path: Path) -> str:
    parts = ("cgmem_nb", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def rank(module: str) -> int:
    """0 for the core, 1..5 for the layers, TOP for the root and top-level modules."""
    parts = module.split(".")
    if len(parts) == 1:
        return TOP
    if parts[1] in CORE:
        return 0
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1]) + 1
    return TOP


def _known(name: str) -> str | None:
    """``name`` if it is a module of the package, else its closest enclosing module (``pkg.attr``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """Every cgmem_nb module ``module`` imports, anywhere in its source."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                found.add(f"{origin}.{alias.name}")  # a submodule, or an attribute of `origin`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_STRING.fullmatch(node.value):
            # A module named in a string ("cgmem_nb.engine.sampled"), or an attribute of one; not
            # a dotted name that only starts like the package ("cgmem_nb.ProfileResult", a format tag).
            owner = node.value.rpartition(".")[0]
            if node.value in MODULES or (owner in MODULES and owner != "cgmem_nb"):
                found.add(node.value)
    targets = {_known(name) for name in found if name.startswith("cgmem_nb")}
    return {t for t in targets if t is not None and t != module}


GRAPH: dict[str, set[str]] = {module: imports_of(module) for module in MODULES}


def test_the_package_and_its_layers_are_found() -> None:
    # A refactor that moved the package would make every check below pass vacuously.
    assert {rank(m) for m in MODULES} == {TOP, 0, 1, 2, 3, 4, 5}
    assert len(MODULES) > 50
    assert "cgmem_nb.session.result" in GRAPH["cgmem_nb.session.profiler"]  # imports are read


@pytest.mark.parametrize("module", sorted(m for m in MODULES if rank(m) != TOP))
def test_imports_point_left(module: str) -> None:
    mine = rank(module)
    wrong = sorted(
        target for target in GRAPH[module]
        if rank(target) == TOP or rank(target) > mine or (mine == 0 and rank(target) != 0)
    )
    assert not wrong, f"{module} (rank {mine}) imports against the flow: {wrong}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_the_checker_sees_what_it_must_refuse() -> None:
    # Built graphs: a cycle around three modules, and the rules on ranks.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert rank("cgmem_nb.session.profiler") > rank("cgmem_nb.engine.monitor") > rank("cgmem_nb.schema.summary")
    assert rank("cgmem_nb.facade") == rank("cgmem_nb") == TOP
    # Lazy imports, TYPE_CHECKING imports and importlib strings count.
    assert "cgmem_nb.outputs.panel" in GRAPH["cgmem_nb.integrations.magics"]  # imported inside a function
    assert "cgmem_nb.engine.sampled" in GRAPH["cgmem_nb.session.scope"]  # a sys.modules string
    assert "cgmem_nb.session.profiler" in GRAPH["cgmem_nb.session.holders"]  # under TYPE_CHECKING
