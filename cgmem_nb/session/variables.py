"""The variable census: what each name in the user namespace holds, and who else holds it.

``variables()`` (and ``%memvars``) measure every user variable deeply without
copying data: pandas objects by ``memory_usage(deep=True)``, numpy arrays by
``nbytes``, containers walked with each object counted once. A numpy view is
flagged (``is_view``) and its buffer is counted once across the namespace in
``unique_bytes``; the column sums to what the namespace holds.

``held_by`` names the other holders of the same object: ``Out[n]``, ``_``,
``__``, ``___`` and ``functools`` caches. ``shared_with`` names other variables
that reach the same object or numpy buffer.

Measurements are cached per object (keyed by identity, shape and buffers), so a
census every cell stays cheap on a namespace of a few GB.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pandas as pd

from .. import schema
from ..schema.readable import readable
from ..sizing import Measure, array_root, measure, pandas_version
from .namespace import (
    cache_contents,
    cache_holders,
    categorize,
    get_shell,
    hidden_names,
    is_lru_cache,
    output_holders,
    type_name,
    user_variables,
)

#: Containers with at least this many elements are re-measured only when their length changes.
BIG_CONTAINER = 1000
#: Objects walked per variable at most (the size is then a lower bound, ``truncated``).
WALK_LIMIT = 200_000
_CACHE_MAX = 4096


@dataclass(frozen=True)
class VariableInfo:
    """One row of the census."""

    #: The variable's name in the user namespace.
    name: str
    #: Qualified type name (``pandas.DataFrame``, ``numpy.ndarray``, ``list``...).
    type: str
    #: Allocation category the object belongs to (see :func:`categorize`).
    category: str
    #: Deep size: everything the name reaches, each object counted once within it.
    size_bytes: int
    #: Bytes attributed to this name when every object and buffer in the namespace is
    #: counted once (sums to the namespace's total; a view of a named array gets 0).
    unique_bytes: int
    #: True for a numpy array (or pandas object) that shows another array's buffer.
    is_view: bool
    #: Other variables that reach the same object or numpy buffer.
    shared_with: tuple[str, ...]
    #: Other holders of the same object: ``Out[n]``, ``_``, ``__``, ``___``, caches.
    held_by: tuple[str, ...]
    #: Length, for containers and pandas objects (rows), else None.
    length: int | None
    #: True when the walk stopped at :data:`WALK_LIMIT` objects (size is a lower bound).
    truncated: bool


# -- measuring, with a cache ---------------------------------------------------------------
_cache: dict[int, tuple[Any, Measure]] = {}


def _version(obj: Any) -> Any:
    """What must stay equal for a cached measure of ``obj`` to be reused (None: do not cache)."""
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        return (type(obj), obj.shape, obj.dtype.str, id(array_root(obj))) if obj.dtype != object else None
    if isinstance(obj, (pd.DataFrame, pd.Series)):
        return pandas_version(obj)
    if isinstance(obj, (str, bytes)):
        return (type(obj), len(obj))
    if isinstance(obj, (list, dict, set, frozenset, tuple, deque)):
        try:
            n = len(obj)
        except TypeError:
            return None
        if n >= BIG_CONTAINER:
            # Walking a big container every cell costs ~1 s per million objects: re-walk only
            # when its length changes (in-place changes of its elements' sizes are missed).
            last = obj[-1] if isinstance(obj, (list, tuple, deque)) and n else None
            return (type(obj), n, id(last))
    return None


def measure_cached(obj: Any) -> Measure:
    """:func:`cgmem_nb.sizing.measure` of ``obj``, reused while the object looks unchanged.

    Arrays, frames and strings are cached by identity, shape, dtypes and buffers;
    containers of :data:`BIG_CONTAINER` elements or more by identity and length
    (and last element); smaller containers are walked every time.
    """
    version = _version(obj)
    if version is not None:
        hit = _cache.get(id(obj))
        if hit is not None and hit[0] == version:
            return hit[1]
    m = measure(obj, limit=WALK_LIMIT)
    if version is not None:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[id(obj)] = (version, m)
    return m


class Claimed:
    """Objects and numpy buffers already counted, kept as the walks' own id sets (no copying)."""

    def __init__(self) -> None:
        self.id_sets: list[set[int]] = []
        self.buffers: set[int] = set()
        self._union: set[int] | None = None

    def add(self, m: Measure) -> None:
        """Count everything ``m`` reached."""
        self.id_sets.append(m.ids)
        self.buffers.update(m.buffers)
        self._union = None

    def holds(self, key: int) -> bool:
        """True when object id ``key`` is already counted."""
        return any(key in ids for ids in self.id_sets)

    def overlaps(self, m: Measure) -> bool:
        """True when ``m`` reached something already counted."""
        return any(not ids.isdisjoint(m.ids) for ids in self.id_sets) or not self.buffers.isdisjoint(m.buffers)

    def ids(self) -> set[int]:
        """All counted ids (built once, when a walk has to skip them)."""
        if self._union is None:
            self._union = set().union(*self.id_sets)
        return self._union


def exclusive_bytes(m: Measure, obj: Any, claimed: Claimed) -> int:
    """Bytes of ``obj`` (measured as ``m``) that nothing ``claimed`` holds.

    When ``obj`` shares objects with claimed ones it is walked again, skipping them.
    """
    if claimed.holds(id(obj)):
        return 0
    if not claimed.overlaps(m):
        return m.size
    again = measure(obj, limit=WALK_LIMIT, seen=set(claimed.ids()))
    size = again.size
    for root, (shown, _owned) in m.buffers.items():
        if root in claimed.buffers:
            size -= shown
    return max(size, 0)


def _length(obj: Any) -> int | None:
    if isinstance(obj, (str, bytes, bytearray)):
        return None
    try:
        return len(obj)
    except Exception:
        return None


def census(ns: Mapping[str, Any], hidden: Iterable[str] = ()) -> list[VariableInfo]:
    """Measure every user variable in ``ns``; biggest first."""
    names = user_variables(ns, hidden)
    measures: dict[str, Measure] = {}
    for name, obj in names.items():
        if is_lru_cache(obj):
            measures[name] = measure(cache_contents(obj), limit=WALK_LIMIT)
        else:
            measures[name] = measure_cached(obj)

    np = sys.modules.get("numpy")

    def view_flag(obj: Any) -> bool:
        if np is not None and isinstance(obj, np.ndarray):
            return obj.base is not None and isinstance(array_root(obj), np.ndarray) and array_root(obj) is not obj
        return False

    # Sharing: who reaches the same object (by id) or buffer (by owning array).
    owners: dict[int, list[str]] = {}
    for name, m in measures.items():
        for key in m.ids | {-b for b in m.buffers}:
            owners.setdefault(key, []).append(name)
    shared: dict[str, set[str]] = {name: set() for name in names}
    for holders in owners.values():
        if len(holders) > 1:
            for h in holders:
                shared[h].update(x for x in holders if x != h)

    # Counting once: a directly named object before the containers that also reach it,
    # owners of buffers before views, bigger first.
    def contained(name: str) -> bool:
        key = id(names[name])
        return any(key in measures[other].ids for other in shared[name])

    order = sorted(names, key=lambda n: (view_flag(names[n]), not contained(n), -measures[n].size))
    claimed = Claimed()
    unique: dict[str, int] = {}
    for name in order:
        obj, m = names[name], measures[name]
        size = exclusive_bytes(m, obj, claimed) if shared[name] else m.size
        if view_flag(obj):
            # A view of an unnamed array keeps the whole buffer alive.
            for root, (shown, owned) in m.buffers.items():
                if root not in claimed.buffers:
                    size += owned - shown
        unique[name] = size
        claimed.add(m)

    # Other holders of the same objects.
    other: dict[int, list[str]] = {}
    shell = get_shell()
    hidden_ns = getattr(shell, "user_ns_hidden", None) if shell is not None and getattr(shell, "user_ns", None) is ns else None
    for holder, value in output_holders(ns, hidden_ns).items():
        other.setdefault(id(value), []).append(holder)
    for cname, wrapper in cache_holders(ns).items():
        for value in cache_contents(wrapper):
            if isinstance(value, dict):  # functools.cache keeps {key: value}
                for v in value.values():
                    other.setdefault(id(v), []).append(f"{cname} (cache)")
            else:
                other.setdefault(id(value), []).append(f"{cname} (cache)")

    rows = []
    for name, obj in names.items():
        m = measures[name]
        rows.append(
            VariableInfo(
                name=name,
                type=type_name(obj),
                category=categorize(obj).value,
                size_bytes=m.size,
                unique_bytes=unique[name],
                is_view=view_flag(obj),
                shared_with=tuple(sorted(shared[name])),
                held_by=tuple(dict.fromkeys(other.get(id(obj), []))),
                length=_length(obj),
                truncated=m.truncated,
            )
        )
    rows.sort(key=lambda r: (r.size_bytes, r.name), reverse=True)
    return rows


def variables(ns: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The census of the user namespace as a DataFrame (schema ``variables``), biggest first.

    A :class:`~cgmem_nb.schema.readable.ReadableFrame`: displayed with sizes in KB/MB/GB,
    its data in bytes (``.raw`` is the plain DataFrame).

    ``ns`` defaults to the running IPython shell's namespace (empty outside IPython).
    """
    hidden: Iterable[str] = ()
    if ns is None:
        shell = get_shell()
        if shell is None:
            return readable(schema.make_frame("variables"))
        ns, hidden = shell.user_ns, hidden_names(shell)
    rows = census(ns, hidden)
    return readable(schema.make_frame(
        "variables",
        (
            {
                "name": r.name,
                "type": r.type,
                "category": r.category,
                "size_bytes": r.size_bytes,
                "unique_bytes": r.unique_bytes,
                "is_view": r.is_view,
                "shared_with": ", ".join(r.shared_with),
                "held_by": ", ".join(r.held_by),
                "length": r.length,
                "truncated": r.truncated,
            }
            for r in rows
        ),
    ))
