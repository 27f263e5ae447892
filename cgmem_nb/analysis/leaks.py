"""``LeakDetector``: memory that outlives its scope or keeps growing, and what holds it.

It reads :class:`~cgmem_nb.session.holders.Observation` s (one per cell while
``%memwatch`` is on, one per ``detect_leaks()`` call, one per profiled session)
and applies an ordered list of small rules, each a function
``rule(observations, settings) -> list[Finding]``. Add your own with
:meth:`LeakDetector.add_rule`.

Default rules, in order:

``outlived_scope``
    Memory held only by ``Out[n]`` / ``_`` / ``__`` / ``___``, by the frames of the
    last exception (``sys.last_traceback``) or by ``gc.garbage``, at least
    ``min_size`` bytes. Nothing else holds it, so the user cannot reach it by
    a name: it outlived its scope (status ``held``).
``growing_holder``
    A variable, module-level container, *unbounded* cache or manual-records
    category that grew in at least ``min_growth_steps`` of the observations it
    appears in, by at least ``min_growth`` bytes in all, and has not been flat
    for the last ``settle_steps`` observations (status ``growing``). Growth that
    stopped after at least ``min_leak_steps_when_stopped`` growing steps is a
    leak that stopped growing (status ``held``); after fewer, it was warm-up
    (not reported), unless the holder is a container whose steps each added at
    least ``large_step`` bytes (a list that keeps a big copy every run). A bounded ``lru_cache`` never counts (it stops at its
    bound); a big variable that stays the same size is not a leak.
``unreachable_heap``
    Bytes in use according to malloc (glibc) that grow in the same way while
    no holder explains them: native memory or objects lost to Python (holder
    ``unreachable (native or lost)``). Memory RSS shows but malloc counts as
    *free* is fragmentation, never a leak: see the patterns and the
    ``fragmentation`` recommendation.

Impact (:class:`LeakImpact`) is the worse of two grades. By size against the
memory limit: Critical ≥ 25%, High ≥ 10%, Medium ≥ 2%, else Low. By time until
the limit at the current growth rate: Critical < 10 minutes, High < 1 hour,
Medium < 1 day, else Low.

The detector keeps history across calls: ``first_seen``, ``last_seen``,
``growth``; a leak whose holder was freed (or shrank below its first size) is
kept with status ``resolved``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from ..schema import LeakImpact, MemoryLeak
from ..session.holders import HolderReading, Observation
from ..units import format_bytes

MB = 1000**2


@dataclass(frozen=True)
class LeakSettings:
    """Thresholds of the leak rules (see the module docs)."""

    #: Bytes an ``Out``/traceback/``gc.garbage`` holder must hold to be reported.
    min_size: int = 1 * MB
    #: Bytes a holder must grow in all to be a growing leak.
    min_growth: int = 1 * MB
    #: Observations that must show growth.
    min_growth_steps: int = 2
    #: A step counts as growth when it adds at least this many bytes...
    min_step: int = 64 * 1024
    #: ...and at least this fraction of the holder's size.
    min_step_fraction: float = 0.001
    #: Flat observations at the end after which growth is over.
    settle_steps: int = 3
    #: Growth that stopped is warm-up when it took fewer steps than this, else a leak
    #: that stopped growing (status ``held``).
    min_leak_steps_when_stopped: int = 3
    #: A container (list, dict, set, deque) whose growth stopped after fewer steps is still a
    #: leak when each of at least ``min_growth_steps`` steps added this many bytes: a list
    #: that keeps a big copy every time it is run.
    large_step: int = 50 * MB
    #: Extra margin for malloc's heap (it moves with temporaries): total growth needed.
    min_native_growth: int = 8 * MB
    #: Impact thresholds: share of the limit.
    size_critical: float = 0.25
    size_high: float = 0.10
    size_medium: float = 0.02
    #: Impact thresholds: seconds until the limit.
    ttl_critical: float = 600.0
    ttl_high: float = 3600.0
    ttl_medium: float = 86400.0


@dataclass(frozen=True)
class Finding:
    """What a rule found; the detector turns it into a :class:`MemoryLeak`."""

    leak_id: str
    holder: str
    holder_kind: str
    category: str
    #: (unix time, cell, bytes) readings the verdict rests on.
    series: tuple[tuple[float, int | None, int], ...]
    status: str
    reason: str
    fix: str


#: What frees the output history: IPython keeps the last three outputs in
#: ``user_ns_hidden`` too, and ``%reset -f out`` does not clear those.
RESET_OUT = '%reset -f out\nget_ipython().user_ns_hidden.update({"_": "", "__": "", "___": ""})'

LeakRule = Callable[[Sequence[Observation], LeakSettings], list[Finding]]

_OUT_RE = re.compile(r"^Out\[(\d+)\]$")


def fix_for(reading: HolderReading) -> str:
    """Code that frees what ``reading``'s holder holds."""
    kind, name = reading.kind, reading.name
    if kind == "variable":
        if reading.type in ("list", "dict", "set", "collections.deque"):
            return f"{name}.clear()  # and stop adding to it on every run"
        return f"del {name}"
    if kind == "output":
        match = _OUT_RE.match(name)
        if match:
            return f"del Out[{match.group(1)}], _{match.group(1)}  # and end cells with ';' to keep their value out of Out\n# to clear all outputs:\n{RESET_OUT}"
        return RESET_OUT
    if kind == "cache":
        return f"{name}.cache_clear()  # then bound it: @functools.lru_cache(maxsize=128)"
    if kind == "module":
        return f"{name}.clear()"
    if kind == "cycle":
        return "gc.garbage.clear(); gc.set_debug(0)  # break the cycles (weakref) so the collector can free them"
    if kind == "traceback":
        return "import sys; sys.last_traceback = sys.last_value = sys.last_type = None"
    if kind == "records":
        return "MEMORY_PROFILER.record_deallocation(allocation_id)  # for records whose objects are gone"
    return "profile the growing cell with %%memprofile to find the allocating line"


def _series(observations: Sequence[Observation], key: str) -> list[tuple[float, int | None, int, HolderReading]]:
    out = []
    for obs in observations:
        reading = obs.holders.get(key)
        if reading is not None:
            out.append((obs.t, obs.cell, reading.size, reading))
    return out


def growth_status(sizes: Sequence[int], settings: LeakSettings, min_growth: int) -> str | None:
    """``"growing"``, ``"held"`` (grew repeatedly, then stopped) or None (stable, or warm-up)."""
    if len(sizes) < settings.min_growth_steps + 1:
        return None
    steps = [b - a for a, b in zip(sizes, sizes[1:])]

    def grew(step: int, base: int) -> bool:
        return step >= max(settings.min_step, settings.min_step_fraction * base)

    growth_steps = sum(1 for s, base in zip(steps, sizes) if grew(s, base))
    if growth_steps < settings.min_growth_steps or sizes[-1] - sizes[0] < min_growth:
        return None
    tail = steps[-settings.settle_steps :]
    if len(steps) > settings.settle_steps and not any(grew(s, base) for s, base in zip(tail, sizes[-len(tail) - 1 :])):
        # It stopped. A few steps then flat is warm-up; many steps, a leak that stopped growing.
        return "held" if growth_steps >= settings.min_leak_steps_when_stopped else None
    return "growing"


_CONTAINER_TYPES = frozenset({"list", "dict", "set", "collections.deque"})


def large_steps(sizes: Sequence[int], settings: LeakSettings) -> int:
    """How many steps of ``sizes`` added at least ``settings.large_step`` bytes."""
    return sum(1 for a, b in zip(sizes, sizes[1:]) if b - a >= settings.large_step)


def outlived_scope(observations: Sequence[Observation], settings: LeakSettings) -> list[Finding]:
    """Big memory held only by outputs, the last traceback or ``gc.garbage``."""
    if not observations:
        return []
    last = observations[-1]
    findings = []
    for key, reading in last.holders.items():
        if reading.kind not in ("output", "traceback", "cycle") or reading.size < settings.min_size:
            continue
        series = [(t, c, s) for t, c, s, _ in _series(observations, key)]
        what = {
            "output": "only the output history holds it (no variable does)",
            "traceback": "only the frames of the last exception hold it",
            "cycle": "reference cycles the garbage collector kept in gc.garbage",
        }[reading.kind]
        findings.append(Finding(key, reading.name, reading.kind, reading.category, tuple(series), "held", what, fix_for(reading)))
    return findings


def growing_holder(observations: Sequence[Observation], settings: LeakSettings) -> list[Finding]:
    """Variables, module containers, unbounded caches and manual records that keep growing."""
    if not observations:
        return []
    findings = []
    for key, reading in observations[-1].holders.items():
        if reading.kind not in ("variable", "module", "cache", "records", "cycle"):
            continue
        if reading.kind == "cache" and reading.capacity is not None:
            continue  # bounded: fills up and stops
        series = _series(observations, key)
        sizes = [s for _, _, s, _ in series]
        status = growth_status(sizes, settings, settings.min_growth)
        big = large_steps(sizes, settings) if reading.type in _CONTAINER_TYPES else 0
        if status is None and big >= settings.min_growth_steps:
            status = "held"
        if status is None:
            continue
        grew = f"`{reading.name}` grew in {len(series)} observations"
        if big >= settings.min_growth_steps:
            grew = (f"{reading.type} `{reading.name}` grew by {big} large steps ({format_bytes(sizes[-1] - sizes[0])} "
                    "in all): it keeps big copies")
        reason = {
            "variable": grew,
            "module": f"module-level {reading.type} `{reading.name}` keeps growing",
            "cache": f"unbounded cache `{reading.name}` keeps growing",
            "records": f"manual records of {reading.category} keep growing",
            "cycle": "gc.garbage keeps growing",
        }[reading.kind]
        findings.append(
            Finding(key, reading.name if reading.kind != "cache" else f"{reading.name} (lru_cache)", reading.kind,
                    reading.category, tuple((t, c, s) for t, c, s, _ in series), status, reason, fix_for(reading))
        )
    return findings


def unreachable_heap(observations: Sequence[Observation], settings: LeakSettings) -> list[Finding]:
    """malloc's bytes in use that grow without any holder growing with them."""
    usable = [o for o in observations if o.heap_in_use is not None]
    if len(usable) < settings.min_growth_steps + 1:
        return []
    base = usable[0]
    series = []
    for obs in usable:
        explained = 0
        for key, reading in obs.holders.items():
            if reading.kind == "records":
                continue  # manual records describe memory already counted elsewhere
            before = base.holders.get(key)
            explained += reading.size - (before.size if before is not None else 0)
        for key, reading in base.holders.items():
            if key not in obs.holders and reading.kind != "records":
                explained -= reading.size
        assert obs.heap_in_use is not None and base.heap_in_use is not None
        series.append((obs.t, obs.cell, max((obs.heap_in_use - base.heap_in_use) - explained, 0)))
    sizes = [s for _, _, s in series]
    status = growth_status(sizes, replace(settings, min_step=max(settings.min_step, 1 << 20)), settings.min_native_growth)
    if status is None:
        return []
    cells = [c1 for (_, _, s0), (_, c1, s1) in zip(series, series[1:]) if c1 is not None and s1 - s0 >= (1 << 20)]
    where = f" during {', '.join(f'In[{c}]' for c in dict.fromkeys(cells))}" if cells else ""
    return [
        Finding("native:heap", "unreachable (native or lost)", "native", "Unknown", tuple(series), status,
                f"malloc's bytes in use grow{where} and no Python holder explains them "
                "(a C extension, ctypes, or objects lost to Python)",
                fix_for(HolderReading("native:heap", "native", "heap", 0, None, "Unknown", "")))
    ]


DEFAULT_RULES: tuple[LeakRule, ...] = (outlived_scope, growing_holder, unreachable_heap)


class LeakDetector:
    """Applies the leak rules to observations and keeps each leak's history."""

    def __init__(self, settings: LeakSettings | None = None, rules: Sequence[LeakRule] = DEFAULT_RULES) -> None:
        self.settings = settings or LeakSettings()
        #: The rules, in order (a list: insert, remove or reorder freely).
        self.rules: list[LeakRule] = list(rules)
        self._known: dict[str, MemoryLeak] = {}

    def add_rule(self, rule: LeakRule, *, index: int | None = None) -> None:
        """Add ``rule(observations, settings) -> list[Finding]`` (at the end, or at ``index``)."""
        self.rules.insert(len(self.rules) if index is None else index, rule)

    def impact(self, size: int, rate: float, limit: int, used: int) -> tuple[LeakImpact, float | None]:
        """The impact grade and the seconds until the limit at ``rate`` bytes/s."""
        s = self.settings
        share = size / limit if limit else 0.0
        grade = 3 if share >= s.size_critical else 2 if share >= s.size_high else 1 if share >= s.size_medium else 0
        ttl = None
        if rate > 0:
            ttl = max(limit - used, 0) / rate
            grade = max(grade, 3 if ttl < s.ttl_critical else 2 if ttl < s.ttl_high else 1 if ttl < s.ttl_medium else 0)
        return LeakImpact.from_rank(grade), ttl

    def detect(self, observations: Sequence[Observation], *, now: float | None = None, remember: bool = True) -> list[MemoryLeak]:
        """Leaks in ``observations`` (time order), biggest impact first; resolved ones follow.

        ``remember=False`` reads the leak history without updating it (what the exports and
        the dashboard do: a read never changes what a later call finds)."""
        now = time.time() if now is None else now
        if not observations:
            return [leak for leak in self._known.values() if leak.status == "resolved"]
        last = observations[-1]
        found: dict[str, MemoryLeak] = {}
        for rule in self.rules:
            for f in rule(observations, self.settings):
                if f.leak_id in found or not f.series:
                    continue
                t0, c0, s0 = f.series[0]
                t1, c1, s1 = f.series[-1]
                growth = max(s1 - s0, 0)
                rate = growth / (t1 - t0) if f.status == "growing" and t1 > t0 else 0.0
                known = self._known.get(f.leak_id)
                first_seen = min(t0, known.first_seen) if known else t0
                first_cell = known.first_cell if known and known.first_seen <= t0 else c0
                impact, ttl = self.impact(s1, rate, last.limit, last.rss)
                found[f.leak_id] = MemoryLeak(
                    leak_id=f.leak_id, holder=f.holder, holder_kind=f.holder_kind, category=f.category, size=s1,
                    growth=growth, growth_rate=rate, age=max(now - first_seen, 0.0), first_seen=first_seen, last_seen=t1,
                    first_cell=first_cell, last_cell=c1, observations=len(f.series), status=f.status,
                    estimated_impact=impact, time_to_limit=ttl, reason=f.reason, fix=f.fix,
                )
        for leak_id, old in self._known.items():
            if leak_id in found:
                continue
            reading = last.holders.get(leak_id)
            if old.status == "resolved":
                found[leak_id] = old
            elif reading is None or reading.size < old.size - old.growth or reading.size < self.settings.min_size:
                found[leak_id] = replace(old, status="resolved", age=max(now - old.first_seen, 0.0), time_to_limit=None, growth_rate=0.0)
            else:  # stopped growing but still held: still leaked memory
                found[leak_id] = replace(old, status="held", size=reading.size, last_seen=last.t, last_cell=last.cell,
                                         age=max(now - old.first_seen, 0.0), growth_rate=0.0, time_to_limit=None)
        if remember:
            self._known = dict(found)
        return sorted(found.values(), key=lambda k: (k.status == "resolved", -k.estimated_impact.rank, -k.size))

    def reset(self) -> None:
        """Forget leak history."""
        self._known.clear()


def describe_holders(leaks: Sequence[MemoryLeak]) -> list[str]:
    """What holds each unresolved leak, for a one-line message: ``"helpers.REGISTRY (module, 15.0 MB, +10.0 MB)"``."""
    out = []
    for leak in leaks:
        if leak.status == "resolved":
            continue
        growth = f", +{format_bytes(leak.growth)}" if leak.growth else ""
        out.append(f"{leak.holder} ({leak.holder_kind}, {format_bytes(leak.size)}{growth})")
    return out


#: The process-wide leak detector (keeps leak history across calls).
LEAK_DETECTOR = LeakDetector()

__all__ = ["DEFAULT_RULES", "LEAK_DETECTOR", "Finding", "LeakDetector", "LeakImpact", "LeakRule", "LeakSettings",
           "MemoryLeak", "describe_holders", "growing_holder", "outlived_scope", "unreachable_heap"]
