"""``MemoryProfiler`` and the process-wide ``MEMORY_PROFILER``: the seed's API in Python.

A profiler keeps its configuration, the sessions running now and the results of
the last 50, its manual records, and reads its metrics. Sessions
(``with MEMORY_PROFILER.session() as s:``, :mod:`cgmem_nb.session.session`) are
scoped recordings that end in a :class:`~cgmem_nb.session.result.ProfileResult`.
Manual records (``record_allocation`` / ``record_deallocation``,
:mod:`cgmem_nb.session.records`) keep the seed's allocation-id API.

The seed's calls that need the layers above the session (``detect_leaks``,
``analyze_patterns``, ``generate_recommendations``, ``export_*``) are served by
the facade (:mod:`cgmem_nb.session.hooks`, implemented in :mod:`cgmem_nb.facade`).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

from ..categories import CATEGORY_RULES, AllocationType
from ..config import ProfilerConfig, TracerChoice
from ..engine import probes
from ..engine.events.bus import EVENT_BUS, EventCallback
from ..engine.events.kinds import ProfilerEvent
from ..engine.events.receiver import EventReceiver
from ..engine.monitor import MONITOR
from ..engine.subscription import Subscription
from ..errors import ConfigError
from ..schema import MemoryLeak, Recommendation, UsagePattern
from . import hooks
from .records import ManualRecords, TrackedAllocation
from .result import ProfileResult
from .scope import CategoryScope
from .session import Companion, Session

__all__ = ["MEMORY_PROFILER", "MemoryMetrics", "MemoryProfiler"]

_RESULTS_KEPT = 50

#: Every live profiler, so the one monitor can read whichever has a running session.
_PROFILERS: weakref.WeakSet[MemoryProfiler] = weakref.WeakSet()


@dataclass(frozen=True)
class MemoryMetrics:
    """A reading of the profiler's state (``MEMORY_PROFILER.get_metrics()``)."""

    #: Resident set size of the process now (what the OOM killer looks at).
    current_usage: int
    #: The kernel's peak RSS of the process (since it started, or the last session reset).
    peak_usage: int
    #: The memory limit in force and where it came from.
    limit: int
    limit_source: str
    #: Bytes the running tracer sees, or None when no session runs.
    traced_bytes: int | None
    #: Manual records: allocations and deallocations recorded so far.
    allocation_count: int
    deallocation_count: int
    #: Manual records: bytes alive now, and the most alive at once.
    tracked_bytes: int
    tracked_peak_bytes: int
    #: Manual records: bytes alive now by category.
    by_category: Mapping[str, int] = field(default_factory=dict)
    #: Unique set size, where the platform reports it.
    uss_bytes: int | None = None
    #: Sessions running now.
    active_sessions: int = 0

    @property
    def usage_ratio(self) -> float:
        """``current_usage / limit``."""
        return self.current_usage / self.limit if self.limit else 0.0


class MemoryProfiler:
    """The profiler: configuration, sessions, manual records and metrics.

    Use the process-wide :data:`MEMORY_PROFILER` unless you need an isolated one.
    """

    def __init__(self, config: ProfilerConfig | None = None) -> None:
        self._config = config
        self._lock = threading.RLock()
        self._active: list[Session] = []
        self._results: deque[ProfileResult] = deque(maxlen=_RESULTS_KEPT)
        self._sessions_finished = 0
        #: The manual records (``record_allocation`` / ``record_deallocation``).
        self.records = ManualRecords()
        _PROFILERS.add(self)

    # -- configuration ----------------------------------------------------------------
    @property
    def config(self) -> ProfilerConfig:
        """The configuration in force (read from the environment on first use)."""
        if self._config is None:
            self._config = ProfilerConfig.from_env()
        return self._config

    def initialize(self, config: ProfilerConfig | None = None, **changes: Any) -> MemoryProfiler:
        """Set the configuration (``config``, or the current one with ``changes``)."""
        if config is not None and not isinstance(config, ProfilerConfig):
            raise ConfigError(f"initialize() takes a ProfilerConfig, not {type(config).__name__}")
        base = config if config is not None else self.config
        self._config = base.replace(**changes) if changes else base
        return self

    def memory_limit(self) -> probes.MemoryLimit:
        """The memory limit in force (config, else cgroup, else physical memory)."""
        return probes.memory_limit(self.config.memory_limit_bytes)

    @property
    def publishing(self) -> bool:
        """True when live events are published (``config.real_time_monitoring``) and someone listens."""
        return self.config.real_time_monitoring and EVENT_BUS.has_listeners

    # -- sessions ------------------------------------------------------------------------
    def session(
        self,
        label: str | None = None,
        *,
        tracer: TracerChoice = "auto",
        depth: int | None = None,
        limit: int | str | None = None,
        guard: bool | None = None,
        interval: int | str | None = None,
        analyze: bool = True,
        companions: Iterable[Companion] = (),
    ) -> Session:
        """A profiling session, as a context manager or a decorator.

        ``tracer``: ``"auto"`` follows ``ProfilerConfig.sampling_rate`` (by default the
        sampled tracer where it is available), ``"exact"`` is tracemalloc, ``"sampled"``
        the native sampler with a mean ``interval`` (bytes or ``"64 KiB"``).

        ``guard=True`` interrupts the code (``KeyboardInterrupt``) when RSS reaches
        ``config.guard_fraction`` of the limit (see :mod:`cgmem_nb.session.guard`);
        None follows ``ProfilerConfig.guard``. ``analyze=False`` leaves the leak,
        pattern and recommendation tables of the result empty (cheaper). ``companions``
        run beside the session and add their part to its result (``cgmem_nb.dask`` profiles
        a Dask cluster's workers this way).
        """
        return Session(
            self, label, tracer=tracer, depth=depth, limit=limit, guard=guard, interval=interval, analyze=analyze,
            companions=companions,
        )

    def session_started(self, session: Session) -> None:
        """Count ``session`` as running (its ``start()`` calls this)."""
        with self._lock:
            self._active.append(session)

    def session_stopped(self, session: Session) -> None:
        """Stop counting ``session`` as running (its ``stop()`` calls this)."""
        with self._lock:
            if session in self._active:
                self._active.remove(session)

    def keep(self, result: ProfileResult) -> None:
        """Store a finished session's result (the last 50 are kept)."""
        with self._lock:
            self._results.append(result)
            self._sessions_finished += 1

    @property
    def sessions_finished(self) -> int:
        """Sessions finished since this profiler was made (results beyond the last 50 included)."""
        return self._sessions_finished

    def traced_bytes(self) -> int | None:
        """Bytes the running tracer sees (process-wide), or None when no session of this profiler traces."""
        for session in self.active_sessions:
            value = session.traced_bytes
            if value is not None:
                return value
        return None

    def checkpoint(self) -> None:
        """Give every running session a chance to snapshot a new peak (cheap)."""
        for s in self.active_sessions:
            s.checkpoint()

    @property
    def active_sessions(self) -> list[Session]:
        """Sessions running now, outermost first."""
        with self._lock:
            return list(self._active)

    @property
    def last_result(self) -> ProfileResult | None:
        """The result of the latest finished session."""
        with self._lock:
            return self._results[-1] if self._results else None

    @property
    def results(self) -> list[ProfileResult]:
        """Recent results, oldest first (the last 50)."""
        with self._lock:
            return list(self._results)

    # -- analysis and exports (the seed's API, served by the facade) ------------------------
    def detect_leaks(self, *, observe: bool = True) -> list[MemoryLeak]:
        """Leaks found so far, taking an observation now (see :mod:`cgmem_nb.analysis.leaks`).

        ``observe=False`` only reads: no observation is taken and the leak history is not
        updated (the exports and the dashboard read this way, so reading changes nothing)."""
        return hooks.facade().detect_leaks(self, observe=observe)

    def analyze_patterns(self) -> list[UsagePattern]:
        """Per-category usage patterns over everything recorded."""
        return hooks.facade().analyze_patterns(self)

    def generate_recommendations(self, *, observe: bool = True) -> list[Recommendation]:
        """Recommendations, most important first, with measured savings (``observe=False``:
        a read that changes nothing, as for :meth:`detect_leaks`)."""
        return hooks.facade().generate_recommendations(self, observe=observe)

    def export_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = None) -> str:
        """The profiler's state (metrics, sessions, manual records, monitor timeline and
        every stored result) as JSON; also written atomically to ``path`` when given."""
        return hooks.facade().export_json(self, path, indent=indent)

    def export_csv(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the profiler's tables as CSV files (one per table) into ``directory``."""
        return hooks.facade().export_csv(self, directory)

    def export_prometheus(self) -> str:
        """The profiler's figures in the Prometheus text exposition format."""
        return hooks.facade().export_prometheus(self)

    # -- events ------------------------------------------------------------------------------
    def _check_live_events(self, what: str) -> None:
        if not self.config.real_time_monitoring:
            raise ConfigError(
                f"{what} needs live events, and ProfilerConfig.real_time_monitoring is False: "
                "turn it on with MEMORY_PROFILER.initialize(real_time_monitoring=True)"
            )

    def start_monitoring(self, maxsize: int = 1000) -> EventReceiver:
        """A receiver of every profiler event; keeps the monitor thread sampling until closed.

        Use it as ``async for event in receiver:`` or ``await receiver.recv()``
        (None once closed), or read it with ``drain()``. The monitor publishes a
        ``Sample`` per tick and a ``MemoryPressure`` per level crossing while it is
        open; a slow reader loses the oldest events (counted in ``receiver.dropped``).
        Close it (or use ``with``) to release the monitor thread. Raises
        ``ConfigError`` when ``real_time_monitoring`` is off.
        """
        self._check_live_events("start_monitoring()")
        lease = MONITOR.keep_alive(self.config.sample_interval)
        try:
            return EVENT_BUS.receiver(maxsize=maxsize, on_close=lease.close)
        except BaseException:
            lease.close()
            raise

    def subscribe(
        self,
        callback: EventCallback,
        types: tuple[type[ProfilerEvent], ...] | type[ProfilerEvent] | None = None,
        *,
        interval: float | None = None,
    ) -> Subscription[ProfilerEvent]:
        """Call ``callback(event)`` for every profiler event (of ``types``); keeps the monitor sampling
        (every ``interval`` seconds, default ``config.sample_interval``).

        The callback runs on the publishing thread (the monitor thread for
        ``Sample`` and ``MemoryPressure``): keep it quick and never block in it.
        Close the returned subscription to stop and release the monitor thread.
        Raises ``ConfigError`` when ``real_time_monitoring`` is off.
        """
        self._check_live_events("subscribe()")
        lease = MONITOR.keep_alive(interval if interval is not None else self.config.sample_interval)
        try:
            return EVENT_BUS.subscribe(callback, types, on_close=lease.close)
        except BaseException:
            lease.close()
            raise

    # -- categories ------------------------------------------------------------------------
    def category(self, category: AllocationType | str) -> CategoryScope:
        """Tag allocations in a ``with`` block or a decorated function with ``category``."""
        return CategoryScope(category)

    def add_category_rule(self, pattern: str, category: AllocationType | str) -> None:
        """Allocations from files whose path matches ``pattern`` (a regex) get ``category``."""
        CATEGORY_RULES.add_rule(pattern, category)

    # -- manual records (the seed's allocation-id API) ------------------------------------------
    def record_allocation(self, obj_or_size: Any, category: AllocationType | str = AllocationType.Unknown) -> int:
        """Record an allocation and return its id.

        Given an int, that many bytes are recorded. Given an object, its deep size
        is measured, and its deallocation is recorded when it is garbage collected
        (for objects that support weak references).
        """
        return self.records.record(obj_or_size, category)

    def record_deallocation(self, allocation_id: int) -> bool:
        """Record that allocation ``allocation_id`` was freed; False if it was not live."""
        return self.records.release(allocation_id)

    def tracked_allocations(self) -> list[TrackedAllocation]:
        """Live manual records as ``(id, size, category, created_unix_time)``."""
        return self.records.live()

    # -- metrics ----------------------------------------------------------------------------
    def get_current_usage(self) -> int:
        """Resident set size of the process now, in bytes."""
        return probes.rss()

    def get_metrics(self) -> MemoryMetrics:
        """Current and peak usage, manual-record counts and per-category totals, RSS."""
        limit = self.memory_limit()
        counts = self.records.counts()
        current = probes.rss()
        return MemoryMetrics(
            current_usage=current,
            peak_usage=max(probes.KERNEL_PEAK.read(), current),
            limit=limit.bytes,
            limit_source=limit.source,
            traced_bytes=self.traced_bytes(),
            allocation_count=counts.allocations,
            deallocation_count=counts.deallocations,
            tracked_bytes=counts.tracked_bytes,
            tracked_peak_bytes=counts.tracked_peak_bytes,
            by_category=MappingProxyType(counts.by_category),
            uss_bytes=probes.uss(),
            active_sessions=len(self.active_sessions),
        )

    def reset(self) -> None:
        """Forget manual records and stored results (running sessions are not touched)."""
        self.records.clear()
        with self._lock:
            self._results.clear()


#: The process-wide profiler.
MEMORY_PROFILER = MemoryProfiler()


def _traced_bytes_of_all_sessions() -> int | None:
    for profiler in list(_PROFILERS):
        value = profiler.traced_bytes()
        if value is not None:
            return value
    return None


# The one monitor measures pressure against the process-wide profiler's limit and publishes
# only while its configuration allows live events (set here, not in __init__, so an isolated
# MemoryProfiler does not take the monitor over).
def _publish_gate() -> bool:
    try:
        return MEMORY_PROFILER.config.real_time_monitoring
    except ConfigError:  # a bad MEMORY_PROFILER_* variable: the magics say so; the monitor stays quiet
        return False


def _limit() -> int:
    try:
        return MEMORY_PROFILER.memory_limit().bytes
    except ConfigError:
        return probes.memory_limit(None).bytes


MONITOR.set_limit_reader(_limit)
MONITOR.set_publish_gate(_publish_gate)
MONITOR.set_traced_reader(_traced_bytes_of_all_sessions)
