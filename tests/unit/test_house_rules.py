"""House rules read from the package's source: what the layer test does not cover.

* No module reaches into another module's private names (``obj._name`` where
  ``_name`` belongs to another cgmem_nb module), nor sets private attributes on
  objects it does not own.
* No private function, method or attribute is left unused (dead code).
* No star imports; one ``Frame`` type; the tracer choices written once.
* The version written once; the public API importable from ``cgmem_nb``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

import cgmem_nb
from cgmem_nb.config import TRACER_CHOICES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "cgmem_nb"


def _sources() -> dict[Path, ast.Module]:
    # Parsed on demand, not held by the module: sessions of other tests observe the containers of
    # user modules (these tests' module is one), and walking every AST node would cost them memory.
    return {p: ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.fixture(scope="module")
def sources() -> dict[Path, ast.Module]:
    return _sources()


def _private(name: str) -> bool:
    # `_repr_mimebundle_` and friends are protocols other code calls, not private names.
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def _owner(node: ast.expr) -> str | None:
    return node.id if isinstance(node, ast.Name) else None


def _definitions(sources: dict[Path, ast.Module]) -> dict[str, set[Path]]:
    """Private names each module defines: functions, classes, class attributes, ``self._x =``."""
    defined: dict[str, set[Path]] = defaultdict(set)
    for path, tree in sources.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
                defined[node.name].add(path)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _owner(node.value) in ("self", "cls"):
                if _private(node.attr):
                    defined[node.attr].add(path)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and _private(target.id):
                        defined[target.id].add(path)
    return defined


def test_no_module_reaches_into_another_modules_private_names(sources: dict[Path, ast.Module]) -> None:
    defined = _definitions(sources)
    wrong = []
    for path, tree in sources.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute) or not _private(node.attr) or _owner(node.value) in ("self", "cls"):
                continue
            owners = defined.get(node.attr, set())
            if isinstance(node.ctx, ast.Store) or (owners and path not in owners):
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not wrong, "private access across modules:\n" + "\n".join(wrong)


def test_no_private_name_is_left_unused(sources: dict[Path, ast.Module]) -> None:
    used: set[str] = set()
    for tree in sources.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                used.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                used.add(node.value)  # getattr(obj, "_name")
    defined = _definitions(sources)
    dead = sorted(f"{name} ({', '.join(str(p.relative_to(ROOT)) for p in paths)})" for name, paths in defined.items() if name not in used)
    assert not dead, "defined and never used:\n" + "\n".join(dead)


def test_the_checks_above_catch_what_they_look_for(sources: dict[Path, ast.Module]) -> None:
    tree = ast.parse("class A:\n    def __init__(self):\n        self._last_level = None\n")
    stored = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)]
    assert [n.attr for n in stored] == ["_last_level"] and _private("_last_level")
    assert not _private("_repr_mimebundle_") and not _private("__init__")
    defined = _definitions(sources)
    assert "_take" in defined and "_tables" in defined  # private names of the package are seen


def test_no_star_imports(sources: dict[Path, ast.Module]) -> None:
    stars = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in sources.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
    ]
    assert not stars


def test_one_frame_type_and_the_tracer_choices_written_once(sources: dict[Path, ast.Module]) -> None:
    frames = [
        str(path.relative_to(ROOT))
        for path, tree in sources.items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.ClassDef))
        and "Frame" in ([t.id for t in node.targets if isinstance(t, ast.Name)] if isinstance(node, ast.Assign)
                        else [node.name] if isinstance(node, ast.ClassDef)
                        else [node.target.id] if isinstance(node.target, ast.Name) else [])
    ]
    # One Frame, the engine's (tracers.py or the module of the tracer protocol), imported everywhere else.
    assert len(frames) == 1 and frames[0].startswith("cgmem_nb/engine/"), frames
    choices = set(TRACER_CHOICES)
    lists = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path, tree in sources.items()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set))
        and {e.value for e in node.elts if isinstance(e, ast.Constant)} == choices
    ]
    assert len(lists) == 1 and lists[0].startswith("cgmem_nb/config.py"), f"written more than once: {lists}"


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert importlib.metadata.version("cgmem_nb") == cgmem_nb.__version__


PUBLIC = ["MemoryDashboard", "LivePanel", "Session", "Summary", "EVENT_BUS", "Sample", "MemoryPressure", "SessionStarted",
          "SessionFinished", "CellStarted", "CellFinished", "LeakDetected", "RecommendationGenerated", "ThresholdBreached",
          "ProfilerEvent", "EventReceiver", "PressureLevel", "export"]


@pytest.mark.parametrize("name", sorted(set(cgmem_nb.__all__) | set(PUBLIC)))
def test_the_public_api_is_importable_from_cgmem_nb(name: str) -> None:
    assert name in cgmem_nb.__all__
    value = getattr(importlib.import_module("cgmem_nb"), name)
    assert value is not None
    if name == "MemoryDashboard":
        from cgmem_nb.outputs.dashboard import MemoryDashboard

        assert value is MemoryDashboard
    if name == "export":
        assert callable(value.prometheus) and callable(value.read_csv_tables)
