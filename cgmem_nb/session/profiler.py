"""``MemoryProfiler`` and the process-wide ``MEMORY_PROFILER``: the seed's API in Python.

Sessions (``with MEMORY_PROFILER.session() as s:``) are scoped recordings that
end in a :class:`~cgmem_nb.session.result.ProfileResult`. They nest: an inner
session is a sub-session and the outer one still sees everything. Manual
records (``record_allocation`` / ``record_deallocation``) keep the seed's
allocation-id API for code that wants to account for its own objects.
"""

from __future__ import annotations

import ast
import functools
import itertools
import linecache
import os
import sys
import threading
import time
import warnings
import weakref
from collections import deque
from dataclasses import dataclass, field
from types import CodeType, MappingProxyType
from typing import Any, Callable, Iterator, Literal, Mapping, TypeVar

from ..categories import CATEGORY_RULES, AllocationType
from ..config import ProfilerConfig, check_depth
from ..engine import probes
from ..engine.events import EVENT_BUS, EventCallback, EventReceiver, ProfilerEvent, SessionFinished, SessionStarted
from ..engine.events import Subscription as EventSubscription
from ..engine.monitor import MONITOR
from ..engine.tracers import EXACT_TRACER, Tracer, available_tracers
from ..engine.versions import exact_unsupported_reason
from ..errors import ConfigError, SessionError
from ..sizing import deep_size
from ..units import parse_size
from . import notebook
from .recording import Recording
from .result import ProfileResult

F = TypeVar("F", bound=Callable[..., Any])
TracerChoice = Literal["auto", "exact", "sampled"]

_RESULTS_KEPT = 50

#: Every live profiler, so the one monitor can read whichever has a running session.
_PROFILERS: "weakref.WeakSet[MemoryProfiler]" = weakref.WeakSet()
_SESSION_IDS = itertools.count(1)


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


@dataclass
class _Record:
    size: int
    category: AllocationType
    created: float
    finalizer: weakref.finalize | None = None  # type: ignore[type-arg]


class Session:
    """A profiling session: a context manager, and a decorator for functions.

    After the ``with`` block, :attr:`result` holds the :class:`ProfileResult`.
    Used as a decorator, every call of the function is its own session and the
    latest result is at ``profiler.last_result``.
    """

    def __init__(
        self,
        profiler: "MemoryProfiler",
        label: str | None = None,
        *,
        tracer: TracerChoice = "auto",
        depth: int | None = None,
        limit: int | str | None = None,
        cell: int | None = None,
        guard: bool | None = None,
        interval: int | str | None = None,
    ) -> None:
        if tracer not in ("auto", "exact", "sampled"):
            raise ConfigError(f"tracer={tracer!r} is not accepted: use 'auto', 'exact' or 'sampled'")
        if depth is not None:
            check_depth(depth, what="depth")
        self.profiler = profiler
        self.label = label
        self.tracer_choice: TracerChoice = tracer
        self.depth = depth
        self.limit = parse_size(limit, what="limit") if limit is not None else None
        #: Mean sampling interval in bytes for the sampled tracer (None: from the config).
        self.interval = parse_size(interval, what="sampling interval") if interval is not None else None
        if self.interval is not None and self.interval <= 0:
            raise ConfigError(f"interval={interval!r} is not accepted: give a positive size such as '64 KiB'")
        self.cell = cell
        if guard is not None and not isinstance(guard, bool):
            raise ConfigError(f"guard={guard!r} is not accepted: give True, False or None (None follows ProfilerConfig.guard)")
        #: Interrupt the code at ``guard_fraction`` of the limit (None: ``ProfilerConfig.guard``).
        self.guard = guard
        self._guard: Any = None
        #: The finished result, once the session has ended.
        self.result: ProfileResult | None = None
        self._recording: Recording | None = None
        #: Identifier of the session in its SessionStarted / SessionFinished events.
        self.session_id = f"session-{next(_SESSION_IDS)}"

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._recording is not None

    def start(self) -> "Session":
        """Start recording (``with`` does this for you)."""
        if self._recording is not None:
            raise SessionError("this session is already running; a Session object records once")
        if self.result is not None:
            raise SessionError("this session has ended; start a new one with MEMORY_PROFILER.session()")
        self._recording = self.profiler._start_recording(self)
        if self.guard if self.guard is not None else self.profiler.config.guard:
            from .guard import MemoryGuard

            self._guard = MemoryGuard(
                self._recording, fraction=self.profiler.config.guard_fraction, limit=self._recording.limit.bytes
            ).arm()
        if EVENT_BUS.has_listeners:
            EVENT_BUS.publish(SessionStarted(self.session_id, self._recording.label))
        return self

    def stop(self, error: BaseException | None = None) -> ProfileResult:
        """Stop recording and return (and store) the result."""
        recording = self._recording
        if recording is None:
            raise SessionError("this session is not running; use it as `with MEMORY_PROFILER.session() as s:`")
        guard, self._guard = self._guard, None
        # The guard's interrupt may land while it is being disarmed: keep it, stop cleanly, re-raise.
        pending = guard.disarm_catching() if guard is not None else None
        self._recording = None
        try:
            self.result = recording.stop(error if error is not None else pending)
            if guard is not None:
                from .guard import guard_summary

                self.result = ProfileResult._owning(
                    {**self.result.summary, **guard_summary(guard)}, dict(self.result._tables)
                )
        finally:
            self.profiler._finish(self, recording)
        if not getattr(self, "_watch", False):
            self.result = self.profiler._analyze(self.result)
        self.profiler._store(self.result)
        if EVENT_BUS.has_listeners:
            EVENT_BUS.publish(SessionFinished(self.session_id, recording.label, summary=self.result.summary))
        if pending is not None and error is None:
            raise pending
        return self.result

    def checkpoint(self) -> None:
        """Take a peak snapshot now if memory is at a new high (cheap otherwise)."""
        if self._recording is not None:
            self._recording.checkpoint()

    def __enter__(self) -> "Session":
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._recording is not None:
            self.stop(exc)

    def __call__(self, func: F) -> F:
        label = self.label or getattr(func, "__qualname__", repr(func))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Session(
                self.profiler, label, tracer=self.tracer_choice, depth=self.depth, limit=self.limit, guard=self.guard, interval=self.interval
            ):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class CategoryScope:
    """Tags allocations with a category: ``with profiler.category("Cache"):`` or as a decorator."""

    _with_spans: dict[tuple[str, int], tuple[int, int] | None] = {}

    def __init__(self, category: AllocationType | str) -> None:
        self.category = AllocationType.parse(category)
        self._previous: list[str | None] = []

    @staticmethod
    def _set_tag(name: str | None) -> str | None:
        sampled = sys.modules.get("cgmem_nb.engine.sampled")
        setter = getattr(sampled, "set_tag", None)
        if setter is None:
            return None
        try:
            return setter(name)  # type: ignore[no-any-return]
        except Exception:
            return None

    @classmethod
    def _with_span(cls, filename: str, lineno: int) -> tuple[int, int] | None:
        key = (filename, lineno)
        if key not in cls._with_spans:
            span = None
            source = "".join(linecache.getlines(filename))
            if source:
                try:
                    tree = ast.parse(source)
                except SyntaxError:
                    tree = None
                for node in ast.walk(tree) if tree is not None else ():
                    if isinstance(node, (ast.With, ast.AsyncWith)) and node.lineno <= lineno <= (node.body[0].lineno - 1 if node.body else node.lineno):
                        span = (node.lineno, node.end_lineno or node.lineno)
                        break
            cls._with_spans[key] = span
        return cls._with_spans[key]

    def __enter__(self) -> "CategoryScope":
        frame = sys._getframe(1)
        span = self._with_span(frame.f_code.co_filename, frame.f_lineno)
        if span is not None:
            CATEGORY_RULES.add_region(frame.f_code.co_filename, span[0], span[1], self.category)
        self._previous.append(self._set_tag(self.category.value))
        return self

    def __exit__(self, *exc: object) -> None:
        self._set_tag(self._previous.pop() if self._previous else None)

    def __call__(self, func: F) -> F:
        code: CodeType | None = getattr(func, "__code__", None)
        if code is not None:
            lines = [ln for _, _, ln in code.co_lines() if ln is not None]
            CATEGORY_RULES.add_region(code.co_filename, code.co_firstlineno, max(lines, default=code.co_firstlineno), self.category)
        category = self.category

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = CategoryScope._set_tag(category.value)
            try:
                return func(*args, **kwargs)
            finally:
                CategoryScope._set_tag(previous)

        return wrapper  # type: ignore[return-value]


class MemoryProfiler:
    """The profiler: configuration, sessions, manual records and metrics.

    Use the process-wide :data:`MEMORY_PROFILER` unless you need an isolated one.
    """

    def __init__(self, config: ProfilerConfig | None = None) -> None:
        self._config = config
        self._lock = threading.RLock()
        self._active: list[Session] = []
        self._results: deque[ProfileResult] = deque(maxlen=_RESULTS_KEPT)
        self._records: dict[int, _Record] = {}
        self._ids = itertools.count(1)
        self._alloc_count = 0
        self._dealloc_count = 0
        self._tracked = 0
        self._tracked_peak = 0
        self._warned: set[str] = set()
        _PROFILERS.add(self)
        self._sessions_finished = 0

    # -- configuration ----------------------------------------------------------------
    @property
    def config(self) -> ProfilerConfig:
        """The configuration in force (read from the environment on first use)."""
        if self._config is None:
            self._config = ProfilerConfig.from_env()
        return self._config

    def initialize(self, config: ProfilerConfig | None = None, **changes: Any) -> "MemoryProfiler":
        """Set the configuration (``config``, or the current one with ``changes``)."""
        if config is not None and not isinstance(config, ProfilerConfig):
            raise ConfigError(f"initialize() takes a ProfilerConfig, not {type(config).__name__}")
        base = config if config is not None else self.config
        self._config = base.replace(**changes) if changes else base
        return self

    def memory_limit(self) -> probes.MemoryLimit:
        """The memory limit in force (config, else cgroup, else physical memory)."""
        return probes.memory_limit(self.config.memory_limit_bytes)

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
    ) -> Session:
        """A profiling session, as a context manager or a decorator.

        ``tracer``: ``"auto"`` follows ``ProfilerConfig.sampling_rate`` (by default the
        sampled tracer where it is available), ``"exact"`` is tracemalloc, ``"sampled"``
        the native sampler with a mean ``interval`` (bytes or ``"64 KiB"``).

        ``guard=True`` interrupts the code (``KeyboardInterrupt``) when RSS reaches
        ``config.guard_fraction`` of the limit (see :mod:`cgmem_nb.session.guard`);
        None follows ``ProfilerConfig.guard``.
        """
        return Session(self, label, tracer=tracer, depth=depth, limit=limit, guard=guard, interval=interval)

    def _choose_tracer(self, choice: TracerChoice, interval: int | None) -> tuple[Tracer | None, str | None]:
        tracers = available_tracers()
        rate = self.config.sampling_rate
        want = choice
        if want == "auto":
            want = "exact" if rate == 1.0 or "sampled" not in tracers else "sampled"
        if want not in tracers and "exact" not in tracers:
            # Free-threaded builds: no tracer may run (see cgmem_nb.engine.versions).
            return None, f"no allocation tracer runs here: {exact_unsupported_reason()}; process figures only"
        if want == "sampled" and "sampled" not in tracers:
            note = "the sampled tracer is not available in this process; the exact tracer (tracemalloc) ran instead"
            if "sampled" not in self._warned:
                self._warned.add("sampled")
                warnings.warn(f"cgmem_nb: {note}", RuntimeWarning, stacklevel=4)
            return EXACT_TRACER, note
        tracer = tracers[want]
        if want == "sampled":
            from ..engine.sampled import DEFAULT_INTERVAL_BYTES, SampledTracer, interval_for_rate

            assert isinstance(tracer, SampledTracer)
            if interval is None:
                interval = interval_for_rate(rate) if rate is not None and rate < 1.0 else DEFAULT_INTERVAL_BYTES
            if tracer.interval != interval:
                if tracer.is_running():
                    return tracer, f"the sampled tracer was already running with a {tracer.interval}-byte interval; this session shares it"
                tracer.set_interval(interval)
        return tracer, None

    def _start_recording(self, session: Session) -> Recording:
        config = self.config
        limit = probes.MemoryLimit(session.limit, "session") if session.limit else self.memory_limit()
        if not config.enabled:
            tracer: Tracer | None = None
            note: str | None = "profiling is disabled (ProfilerConfig.enabled=False)"
        else:
            tracer, note = self._choose_tracer(session.tracer_choice, session.interval)
        depth = session.depth or (config.stack_trace_depth if config.enable_stack_traces else 1)
        cell = session.cell if session.cell is not None else notebook.current_cell()
        label = session.label or (f"In[{cell}]" if cell is not None else "session")
        recording = Recording(tracer=tracer, config=config, label=label, cell=cell, depth=depth, limit=limit, tracer_note=note)
        recording.start()
        with self._lock:
            self._active.append(session)
        return recording

    def _finish(self, session: Session, recording: Recording) -> None:
        with self._lock:
            if session in self._active:
                self._active.remove(session)

    def _analyze(self, result: ProfileResult) -> ProfileResult:
        """Add the leaks, patterns and recommendations tables (analysis is imported lazily)."""
        try:
            from ..analysis import analyze_result
        except ImportError:  # pragma: no cover - analysis is part of the package
            return result
        return analyze_result(self, result)

    # -- analysis (the seed's API; the work is in cgmem_nb.analysis) ---------------------------
    def detect_leaks(self) -> list[Any]:
        """Leaks found so far (``list[MemoryLeak]``), taking an observation now."""
        from ..analysis import detect_leaks

        return detect_leaks(self)

    def analyze_patterns(self) -> list[Any]:
        """Per-category usage patterns (``list[UsagePattern]``) over everything recorded."""
        from ..analysis import analyze_patterns

        return analyze_patterns(self)

    def generate_recommendations(self) -> list[Any]:
        """Recommendations (``list[Recommendation]``), most important first, with measured savings."""
        from ..analysis import generate_recommendations

        return generate_recommendations(self)

    def _store(self, result: ProfileResult) -> None:
        self._results.append(result)
        self._sessions_finished += 1

    @property
    def sessions_finished(self) -> int:
        """Sessions finished since this profiler was made (results beyond the last 50 included)."""
        return self._sessions_finished

    def _traced_bytes(self) -> int | None:
        with self._lock:
            sessions = list(self._active)
        for s in sessions:
            rec = s._recording
            if rec is not None and rec.tracer is not None:
                return rec.tracer.current()
        return None

    def checkpoint(self) -> None:
        """Give every running session a chance to snapshot a new peak (cheap)."""
        for s in list(self._active):
            s.checkpoint()

    @property
    def active_sessions(self) -> list[Session]:
        """Sessions running now, outermost first."""
        with self._lock:
            return list(self._active)

    @property
    def last_result(self) -> ProfileResult | None:
        """The result of the latest finished session."""
        return self._results[-1] if self._results else None

    @property
    def results(self) -> list[ProfileResult]:
        """Recent results, oldest first (the last 50)."""
        return list(self._results)

    # -- events ------------------------------------------------------------------------------
    def start_monitoring(self, maxsize: int = 1000) -> EventReceiver:
        """A receiver of every profiler event; keeps the monitor thread sampling until closed.

        Use it as ``async for event in receiver:`` or ``await receiver.recv()``
        (None once closed), or read it with ``drain()``. The monitor publishes a
        ``Sample`` per tick and a ``MemoryPressure`` per level crossing while it is
        open; a slow reader loses the oldest events (counted in ``receiver.dropped``).
        Close it (or use ``with``) to release the monitor thread.
        """
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
    ) -> EventSubscription:
        """Call ``callback(event)`` for every profiler event (of ``types``); keeps the monitor sampling.

        The callback runs on the publishing thread (the monitor thread for
        ``Sample`` and ``MemoryPressure``): keep it quick and never block in it.
        Close the returned subscription to stop and release the monitor thread.
        """
        lease = MONITOR.keep_alive(self.config.sample_interval)
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
        cat = AllocationType.parse(category)
        if isinstance(obj_or_size, bool):
            raise ConfigError("record_allocation() got a bool; give a size in bytes or the object itself")
        if isinstance(obj_or_size, int):
            if obj_or_size < 0:
                raise ConfigError(f"record_allocation() size {obj_or_size!r} must be 0 or more bytes")
            size, obj = obj_or_size, None
        else:
            size, obj = deep_size(obj_or_size), obj_or_size
        with self._lock:
            rid = next(self._ids)
            record = _Record(size, cat, time.time())
            self._records[rid] = record
            self._alloc_count += 1
            self._tracked += size
            self._tracked_peak = max(self._tracked_peak, self._tracked)
        if obj is not None:
            try:
                record.finalizer = weakref.finalize(obj, self._collected, rid)
            except TypeError:
                pass  # not weak-referenceable: the caller records the deallocation
        return rid

    def _collected(self, rid: int) -> None:
        self.record_deallocation(rid)

    def record_deallocation(self, allocation_id: int) -> bool:
        """Record that allocation ``allocation_id`` was freed; False if it was not live."""
        with self._lock:
            record = self._records.pop(allocation_id, None)
            if record is None:
                return False
            self._dealloc_count += 1
            self._tracked -= record.size
        if record.finalizer is not None:
            record.finalizer.detach()
        return True

    def tracked_allocations(self) -> list[tuple[int, int, str, float]]:
        """Live manual records as ``(id, size, category, created_unix_time)``."""
        with self._lock:
            return [(rid, r.size, r.category.value, r.created) for rid, r in self._records.items()]

    # -- metrics ----------------------------------------------------------------------------
    def get_current_usage(self) -> int:
        """Resident set size of the process now, in bytes."""
        return probes.rss()

    def get_metrics(self) -> MemoryMetrics:
        """Current and peak usage, manual-record counts and per-category totals, RSS."""
        limit = self.memory_limit()
        with self._lock:
            by_cat: dict[str, int] = {}
            for r in self._records.values():
                by_cat[r.category.value] = by_cat.get(r.category.value, 0) + r.size
            alloc, dealloc, tracked, tracked_peak = self._alloc_count, self._dealloc_count, self._tracked, self._tracked_peak
            active = len(self._active)
        current = probes.rss()
        return MemoryMetrics(
            current_usage=current,
            peak_usage=max(probes.KERNEL_PEAK.read(), current),
            limit=limit.bytes,
            limit_source=limit.source,
            traced_bytes=self._traced_bytes(),
            allocation_count=alloc,
            deallocation_count=dealloc,
            tracked_bytes=tracked,
            tracked_peak_bytes=tracked_peak,
            by_category=MappingProxyType(by_cat),
            uss_bytes=probes.uss(),
            active_sessions=active,
        )

    def reset(self) -> None:
        """Forget manual records and stored results (running sessions are not touched)."""
        with self._lock:
            for r in self._records.values():
                if r.finalizer is not None:
                    r.finalizer.detach()
            self._records.clear()
            self._alloc_count = self._dealloc_count = self._tracked = self._tracked_peak = 0
            self._results.clear()

    def _iter_active(self) -> Iterator[Session]:
        return iter(self.active_sessions)

    # -- exports (implemented in cgmem_nb.outputs.export, imported when used) ------------------
    def export_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = None) -> str:
        """The profiler's state (metrics, sessions, manual records, monitor timeline and
        every stored result) as JSON; also written atomically to ``path`` when given."""
        from ..outputs.export import profiler_json

        return profiler_json(self, path, indent=indent)

    def export_csv(self, directory: str | os.PathLike[str]) -> dict[str, Any]:
        """Write the profiler's tables as CSV files (one per table) into ``directory``."""
        from ..outputs.export import profiler_csv

        return profiler_csv(self, directory)

    def export_prometheus(self) -> str:
        """The profiler's figures in the Prometheus text exposition format."""
        from ..outputs.export import prometheus

        return prometheus(self)


#: The process-wide profiler.
MEMORY_PROFILER = MemoryProfiler()
# Pressure events on the bus are measured against the process-wide profiler's limit
# (set here, not in __init__, so an isolated MemoryProfiler does not take it over).
MONITOR.set_limit_reader(lambda: MEMORY_PROFILER.memory_limit().bytes)


def _traced_bytes_of_all_sessions() -> int | None:
    for profiler in _PROFILERS:
        value = profiler._traced_bytes()
        if value is not None:
            return value
    return None


MONITOR.set_traced_reader(_traced_bytes_of_all_sessions)
