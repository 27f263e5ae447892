"""The user namespace as the profiler sees it: the shell, the user's variables, the output
history (``Out[n]``, ``_``), ``functools`` caches, and what category an object's memory is.
"""

from __future__ import annotations

import functools
import gc
import sys
import types
from typing import Any, Iterable, Mapping

from ..categories import AllocationType

__all__ = [
    "cache_contents",
    "cache_holders",
    "categorize",
    "get_shell",
    "hidden_names",
    "is_lru_cache",
    "output_holders",
    "type_name",
    "user_namespace",
    "user_variables",
]

_OUTPUT_ALIASES = ("_", "__", "___")
_IPYTHON_NAMES = frozenset({"In", "Out", "exit", "quit", "get_ipython", "open"})


def type_name(obj: Any) -> str:
    """``pandas.DataFrame`` style name of ``type(obj)`` (builtins unqualified)."""
    t = type(obj)
    module = t.__module__.split(".")[0]
    return t.__qualname__ if module == "builtins" else f"{module}.{t.__qualname__}"


def is_lru_cache(obj: Any) -> bool:
    """True for a ``functools.lru_cache`` / ``functools.cache`` wrapper."""
    return isinstance(obj, functools._lru_cache_wrapper)


def categorize(obj: Any, *, _depth: int = 0) -> AllocationType:
    """The category an object's memory belongs to, from its type.

    numpy/pandas/arrow objects are ``Vector``; ``str`` is ``String``; ``bytes``,
    ``bytearray`` and ``memoryview`` are ``Buffer``; caches are ``Cache``; graph
    libraries' graphs are ``Graph``; compiled patterns ``Parser``; containers
    take the category of their first non-empty element.
    """
    if is_lru_cache(obj):
        return AllocationType.Cache
    module = type(obj).__module__.split(".")[0]
    if module in ("numpy", "pandas", "pyarrow", "polars", "scipy", "torch", "xarray"):
        return AllocationType.Vector
    if module in ("networkx", "igraph", "graph_tool", "rustworkx"):
        return AllocationType.Graph
    if module in ("faiss", "annoy", "hnswlib", "sqlite3"):
        return AllocationType.Index
    if isinstance(obj, str):
        return AllocationType.String
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return AllocationType.Buffer
    if module == "re":
        return AllocationType.Parser
    if "cache" in type(obj).__name__.lower():
        return AllocationType.Cache
    if _depth < 3:
        first = _first_element(obj)
        if first is None:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict) and attrs:
                first = max(attrs.values(), key=_shallow_size)
                if first is obj:
                    first = None
        if first is not None:
            return categorize(first, _depth=_depth + 1)
    return AllocationType.Unknown


def _shallow_size(obj: Any) -> int:
    try:
        return sys.getsizeof(obj)
    except TypeError:
        return 0


def _first_element(obj: Any) -> Any:
    try:
        if isinstance(obj, dict):
            return next(iter(obj.values()), None)
        if isinstance(obj, (list, tuple)):
            return obj[-1] if obj else None
        if isinstance(obj, (set, frozenset)):
            return next(iter(obj), None)
        if hasattr(obj, "maxlen") and hasattr(obj, "appendleft"):  # deque
            return obj[-1] if len(obj) else None
    except Exception:
        return None
    return None


def cache_contents(wrapper: Any) -> list[Any]:
    """The keys and values an ``lru_cache`` wrapper holds (through the garbage collector)."""
    skip = {id(getattr(wrapper, "__wrapped__", None)), id(getattr(wrapper, "__dict__", None))}
    return [r for r in gc.get_referents(wrapper) if id(r) not in skip and not isinstance(r, type) and type(r) is not object]


def get_shell() -> Any:
    """The running IPython shell, or None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def user_variables(ns: Mapping[str, Any], hidden: Iterable[str] = ()) -> dict[str, Any]:
    """The names a user would call their variables (``%who``'s rule, plus caches).

    Skipped: names starting with ``_``, IPython's own names, modules, functions
    and classes (an ``lru_cache``-wrapped function is kept: it holds data).
    """
    hide = set(hidden) | _IPYTHON_NAMES
    out = {}
    for name, value in list(ns.items()):
        if name.startswith("_") or name in hide:
            continue
        if isinstance(value, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType)):
            continue
        out[name] = value
    return out


def hidden_names(shell: Any) -> set[str]:
    """Names IPython put in the namespace itself (not the user's), unless rebound."""
    hidden = getattr(shell, "user_ns_hidden", None) or {}
    ns = shell.user_ns
    # A hidden name the user rebound is theirs again.
    return {n for n, v in hidden.items() if ns.get(n, v) is v}


def output_holders(ns: Mapping[str, Any], hidden_ns: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``Out[n]`` entries and the ``_``, ``__``, ``___`` aliases: holder name -> object.

    IPython also keeps the last three outputs in ``user_ns_hidden`` (``%reset -f out``
    does not clear those): pass it as ``hidden_ns`` to see them, named ``_ (hidden)``.
    """
    holders: dict[str, Any] = {}
    out = ns.get("Out")
    if isinstance(out, dict):
        for n, value in sorted(out.items()):
            if value is not None:
                holders[f"Out[{n}]"] = value
    for alias in _OUTPUT_ALIASES:
        value = ns.get(alias)
        if value is not None and not (isinstance(value, str) and value == ""):
            holders[alias] = value
    for alias in _OUTPUT_ALIASES if hidden_ns is not None else ():
        value = hidden_ns.get(alias) if hidden_ns is not None else None
        if value is not None and not (isinstance(value, str) and value == ""):
            holders[f"{alias} (hidden)"] = value
    return holders


def cache_holders(ns: Mapping[str, Any]) -> dict[str, Any]:
    """``lru_cache``/``cache`` wrappers among ``ns``'s values: display name -> wrapper."""
    return {name: value for name, value in ns.items() if is_lru_cache(value)}


def user_namespace() -> dict[str, Any]:
    """The running shell's user variables (see :func:`user_variables`), or ``{}`` outside IPython."""
    shell = get_shell()
    if shell is None:
        return {}
    return user_variables(shell.user_ns, hidden_names(shell))
