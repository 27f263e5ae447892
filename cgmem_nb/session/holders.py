"""Observations of what holds memory: the raw data the leak detector and pattern analyzer read.

An :class:`Observation` is taken after every cell while ``%memwatch`` is on,
and whenever ``detect_leaks()`` runs. It records the process (RSS, malloc's
heap, traced bytes) and every *holder* a user can act on, with its size:

========== ====================================================================
kind       holder
========== ====================================================================
variable   a name in the user namespace
output     ``Out[n]``, ``_``, ``__``, ``___`` (bytes no variable also holds)
cache      a ``functools.lru_cache`` / ``functools.cache`` wrapper
module     a module-level dict, list, set or deque of the user's own modules
cycle      ``gc.garbage`` (reference cycles the collector kept)
traceback  ``sys.last_traceback`` (locals of the frames of the last error)
records    manual records (``MEMORY_PROFILER.record_allocation``) by category
========== ====================================================================
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import tracemalloc
import types
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from ..engine import heap, probes
from . import notebook, pools
from .pools import PoolReading
from ..sizing import Measure, measure
from .namespace import cache_contents, categorize, get_shell, hidden_names, is_lru_cache, output_holders, type_name, user_variables
from .variables import WALK_LIMIT, Claimed, exclusive_bytes, measure_cached

if TYPE_CHECKING:
    from .profiler import MemoryProfiler

_CONTAINERS = (dict, list, set, deque)
_KEPT = 2000


@dataclass(frozen=True)
class HolderReading:
    """One holder's size at one observation."""

    #: Stable identifier: ``kind:name``.
    key: str
    kind: str
    #: What the user calls it: ``log``, ``Out[3]``, ``load``, ``mymod.REGISTRY``...
    name: str
    size: int
    #: Entries (``len``) where that means something, else None.
    count: int | None
    category: str
    type: str
    #: Caches: the bound (``maxsize``) or None when unbounded.
    capacity: int | None = None
    #: Python ids of the objects it holds directly (for matching across observations).
    object_id: int = 0


@dataclass(frozen=True)
class Observation:
    """The process and its holders at one moment."""

    #: Unix time.
    t: float
    #: Cell that had just run (None outside IPython or between cells).
    cell: int | None
    rss: int
    #: Bytes in use according to malloc (glibc), or None.
    heap_in_use: int | None
    #: Bytes free inside malloc's heap (fragmentation), or None.
    heap_free: int | None
    #: tracemalloc's traced bytes when it runs, else None.
    traced: int | None
    #: The memory limit in force.
    limit: int
    holders: Mapping[str, HolderReading] = field(default_factory=dict)
    #: Seconds the observation took.
    cost_s: float = 0.0
    #: Bytes ``malloc_trim(0)`` would give back to the system (glibc), or None.
    heap_releasable: int | None = None
    #: Arrow's default memory pool (None unless pyarrow is imported): what its data uses
    #: and what it keeps resident.
    arrow_pool: PoolReading | None = None


# The user's modules found for the modules imported now, keyed by those modules' identities:
# a count alone goes stale when one module is swapped for another (a test runner re-importing).
_modules_seen: tuple[tuple[int, ...], list[types.ModuleType]] = ((), [])


def _user_modules() -> list[types.ModuleType]:
    """The user's own imported modules (not the standard library, packages or cgmem_nb)."""
    global _modules_seen
    items = list(sys.modules.items())
    key = tuple(id(module) for _, module in items)
    if _modules_seen[0] == key:
        return _modules_seen[1]
    found = []
    for name, module in items:
        if name == "__main__" or module is None:
            continue
        filename = getattr(module, "__file__", None)
        if not isinstance(filename, str) or notebook.is_library(filename) or notebook.is_own(filename):
            continue
        found.append(module)
    _modules_seen = (key, found)
    return found


def _len(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:
        return None


def _cache_reading(key: str, name: str, wrapper: Any) -> HolderReading:
    m = measure(cache_contents(wrapper), limit=WALK_LIMIT)
    try:
        info = wrapper.cache_info()
        count, capacity = int(info.currsize), info.maxsize
    except Exception:
        count, capacity = None, None
    return HolderReading(key, "cache", name, m.size, count, "Cache", type_name(wrapper), capacity, id(wrapper))


def _dominant_category(objects: Iterable[Any], *, deep: bool = True) -> str:
    """Category of the biggest of (the first 200 of) ``objects``; shallow sizes pick leaves."""
    best, best_size = None, -1
    for i, obj in enumerate(objects):
        if i >= 200:
            break
        try:
            size = measure_cached(obj).size if deep else sys.getsizeof(obj)
        except TypeError:
            continue
        if size > best_size and not isinstance(obj, dict):
            best, best_size = obj, size
    return categorize(best).value if best is not None else "Unknown"


def _traceback_locals(tb: Any) -> list[Any]:
    """Locals of the traceback's function frames in user code (cells and the user's files).

    Library frames (IPython's own, for one) hold the shell and everything else:
    their locals are not what the error kept alive for the user.
    """
    values = []
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_locals is not frame.f_globals and notebook.is_user_code(frame.f_code.co_filename):
            values.extend(frame.f_locals.values())
        tb = tb.tb_next
    return values


def observe(
    ns: Mapping[str, Any] | None = None,
    *,
    limit: int,
    records: Mapping[str, tuple[int, int]] | None = None,
    hidden: Iterable[str] = (),
    cell: int | None = None,
) -> Observation:
    """Take an observation of the process and of every holder.

    ``ns`` is the namespace to look at (default: the running shell's, empty outside
    IPython), ``limit`` the memory limit in force and ``records`` the live manual
    records by category (``{category: (bytes, count)}``).
    """
    started = time.perf_counter()
    shell = get_shell()
    hidden_ns = None
    space: Mapping[str, Any] = {} if ns is None else ns
    if ns is None and shell is not None:
        space, hidden = shell.user_ns, hidden_names(shell)
        if cell is None:
            cell = notebook.current_cell()
    if shell is not None and getattr(shell, "user_ns", None) is space:
        hidden_ns = getattr(shell, "user_ns_hidden", None)
    holders: dict[str, HolderReading] = {}
    claimed = Claimed()

    for name, obj in user_variables(space, hidden).items():
        if is_lru_cache(obj):
            holders[f"cache:{name}"] = _cache_reading(f"cache:{name}", name, obj)
            continue
        m = measure_cached(obj)
        holders[f"variable:{name}"] = HolderReading(
            f"variable:{name}", "variable", name, m.size, _len(obj), categorize(obj).value, type_name(obj), None, id(obj)
        )
        claimed.add(m)

    seen_outputs: set[int] = set()
    for name, obj in output_holders(space, hidden_ns).items():
        if id(obj) in seen_outputs:
            continue  # `_` is usually the latest Out[n]: counted there
        seen_outputs.add(id(obj))
        m = measure_cached(obj)
        size = exclusive_bytes(m, obj, claimed)
        claimed.add(m)
        holders[f"output:{name}"] = HolderReading(
            f"output:{name}", "output", name, size, _len(obj), categorize(obj).value, type_name(obj), None, id(obj)
        )

    tb = getattr(sys, "last_traceback", None)
    if tb is not None:
        values = _traceback_locals(tb)
        m = measure(values, limit=WALK_LIMIT)
        size = exclusive_bytes(m, values, claimed)
        holders["traceback:sys.last_traceback"] = HolderReading(
            "traceback:sys.last_traceback", "traceback", "sys.last_traceback", size, len(values),
            _dominant_category(values), "traceback", None, id(tb),
        )

    if gc.garbage:
        garbage = list(gc.garbage)
        m = measure(garbage, limit=WALK_LIMIT)
        size = exclusive_bytes(m, garbage, claimed)
        holders["cycle:gc.garbage"] = HolderReading(
            "cycle:gc.garbage", "cycle", "gc.garbage", size, len(garbage), _dominant_category(garbage, deep=False), "list", None, id(gc.garbage)
        )

    for module in _user_modules():
        for gname, value in list(vars(module).items()):
            if gname.startswith("__"):
                continue
            qual = f"{module.__name__}.{gname}"
            if is_lru_cache(value):
                if getattr(value, "__module__", None) == module.__name__:
                    holders[f"cache:{qual}"] = _cache_reading(f"cache:{qual}", qual, value)
            elif isinstance(value, _CONTAINERS) and not claimed.holds(id(value)):
                m = measure(value, limit=WALK_LIMIT)
                holders[f"module:{qual}"] = HolderReading(
                    f"module:{qual}", "module", qual, m.size, _len(value), categorize(value).value, type_name(value), None, id(value)
                )

    for category, (size, count) in (records or {}).items():
        holders[f"records:{category}"] = HolderReading(
            f"records:{category}", "records", f"manual records ({category})", size, count, category, "records"
        )

    stats = heap.heap_stats()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    return Observation(
        t=time.time(),
        cell=cell,
        rss=probes.rss(),
        heap_in_use=stats.in_use_bytes if stats else None,
        heap_free=stats.free_bytes if stats else None,
        traced=traced,
        limit=limit,
        holders=holders,
        cost_s=time.perf_counter() - started,
        heap_releasable=heap.releasable_bytes(),
        arrow_pool=pools.arrow_pool(),
    )


def observe_profiler(profiler: MemoryProfiler, *, cell: int | None = None) -> Observation:
    """:func:`observe` the shell's namespace with ``profiler``'s limit and manual records."""
    return observe(limit=profiler.memory_limit().bytes, records=profiler.records.by_category(), cell=cell)


def log_observation(profiler: MemoryProfiler, *, cell: int | None = None) -> Observation:
    """Take an observation for ``profiler`` and keep it in :data:`OBSERVATIONS` (within its retention)."""
    obs = observe_profiler(profiler, cell=cell)
    OBSERVATIONS.add(obs, profiler.config.history_retention)
    return obs


class ObservationLog:
    """The observations kept for analysis: bounded in count and by ``history_retention``."""

    def __init__(self, kept: int = _KEPT) -> None:
        self._lock = threading.Lock()
        self._items: deque[Observation] = deque(maxlen=kept)

    def add(self, obs: Observation, retention_s: float | None = None) -> None:
        """Keep ``obs``; drop observations older than ``retention_s``."""
        with self._lock:
            self._items.append(obs)
            if retention_s is not None:
                while self._items and obs.t - self._items[0].t > retention_s:
                    self._items.popleft()

    def items(self, since: float | None = None, until: float | None = None) -> list[Observation]:
        """Observations in time order, optionally within ``[since, until]``."""
        with self._lock:
            items = list(self._items)
        return [o for o in items if (since is None or o.t >= since) and (until is None or o.t <= until)]

    def clear(self) -> None:
        """Forget every observation."""
        with self._lock:
            self._items.clear()


#: The process-wide observation log.
OBSERVATIONS = ObservationLog()

__all__ = [
    "HolderReading",
    "Measure",
    "OBSERVATIONS",
    "Observation",
    "ObservationLog",
    "log_observation",
    "observe",
    "observe_profiler",
]
