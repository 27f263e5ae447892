"""Tracers: what sees allocations.

Every tracer follows the :class:`Tracer` protocol so that sessions, results, the
analysis and the outputs never care which one ran. A tracer is process-wide and
reference counted: ``start()`` / ``stop()`` pair up, and nested sessions share
one running tracer. ``mark()`` remembers "now" and ``snapshot(since=mark)`` returns
what was allocated after that mark and is still alive, grouped by stack.

This module holds the protocol, the shared record types and the exact tracer
(tracemalloc). The sampled tracer lives in :mod:`cgmem_nb.engine.sampled`.
"""

from __future__ import annotations

import importlib
import threading
import time
import tracemalloc
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Protocol, runtime_checkable

from ..config import check_depth
from ..errors import TracerError

#: A frame as tracers report it: (filename, line number).
Frame = tuple[str, int]


@dataclass(frozen=True, slots=True)
class StackStat:
    """Allocations made since a mark from one stack (and thread, and tag)."""

    #: Frames of the allocating stack, innermost (most recent call) first.
    frames: tuple[Frame, ...]
    #: Bytes allocated since the mark and still alive.
    live_bytes: int
    #: Blocks allocated since the mark and still alive.
    live_count: int
    #: Bytes allocated since the mark, freed or not. For the exact tracer this equals
    #: ``live_bytes`` (tracemalloc keeps no record of freed blocks); sessions turn it
    #: into the most the stack held at any checkpoint.
    allocated_bytes: int
    #: Blocks allocated since the mark, freed or not (same caveat).
    allocated_count: int
    #: ``threading.get_ident()`` of the allocating thread, when the tracer knows it.
    thread_id: int | None = None
    #: Category tag that was active when the block was allocated (sampled tracer only).
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class TraceSnapshot:
    """What a tracer saw between a mark and now."""

    stats: tuple[StackStat, ...]
    #: Sum of ``live_bytes`` over ``stats``.
    live_bytes: int
    #: True when figures are estimates from samples.
    estimate: bool
    #: ``time.perf_counter()`` when the snapshot was taken.
    taken_at: float
    #: Seconds the snapshot took to take and group.
    cost_s: float = 0.0


@runtime_checkable
class Tracer(Protocol):
    """What every tracer offers. Calls may come from any thread."""

    #: ``"exact"`` or ``"sampled"``.
    name: str
    #: True when figures are estimates.
    estimate: bool

    def start(self, depth: int) -> None:
        """Start tracing (reference counted) with stacks of up to ``depth`` frames."""

    def stop(self) -> None:
        """Undo one ``start()``; the last one stops what this tracer started."""

    def is_running(self) -> bool:
        """True while at least one ``start()`` is not yet undone."""

    def current(self) -> int:
        """Bytes currently traced (live), process-wide."""

    def peak(self) -> int:
        """Most bytes traced at once since the last :meth:`reset_peak`."""

    def reset_peak(self) -> None:
        """Restart peak tracking from the current level."""

    def mark(self) -> object:
        """An opaque token for "now", to pass to :meth:`snapshot`."""

    def snapshot(self, since: object) -> TraceSnapshot:
        """Live allocations made after ``since``, grouped by stack."""

    def depth(self) -> int:
        """Frames kept per stack by the running tracer."""


class PeakFolder:
    """Keeps nested peak readers honest when one of them resets a shared peak.

    tracemalloc's peak (and the kernel's VmHWM) is one global value. Before
    anyone resets it, the current peak is handed to every listener so that an
    outer session never loses a peak that happened before an inner one reset it.
    """

    def __init__(self, read_peak: Callable[[], int], reset: Callable[[], None]) -> None:
        self._read_peak = read_peak
        self._reset = reset
        self._listeners: list[Callable[[int], None]] = []
        self._lock = threading.Lock()

    def add(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove(self, listener: Callable[[int], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def fold(self) -> int:
        """Hand the current peak to every listener and return it."""
        value = self._read_peak()
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(value)
        return value

    def reset(self) -> None:
        """Fold, then reset the shared peak."""
        self.fold()
        self._reset()


def _group_traces(raw: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Group tracemalloc's raw traces by traceback: ``{traceback: (bytes, blocks)}``.

    Runs while tracemalloc traces this very code, and every object allocated
    here costs a traced allocation (several microseconds with a deep stack).
    So the loop allocates nothing per trace: traces are appended to one list
    per traceback and summed in C afterwards.
    """
    groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
    get = groups.get
    for trace in raw:
        bucket = get(trace[2])
        if bucket is None:
            groups[trace[2]] = [trace]
        else:
            bucket.append(trace)
    size_of = itemgetter(1)
    return {tb: (sum(map(size_of, bucket)), len(bucket)) for tb, bucket in groups.items()}


def _raw_traces() -> list[tuple[Any, ...]]:
    getter = getattr(tracemalloc, "_get_traces", None)
    if getter is not None:
        return getter()  # type: ignore[no-any-return]
    return list(tracemalloc.take_snapshot().traces._traces)  # type: ignore[attr-defined]  # pragma: no cover


@dataclass(frozen=True)
class _ExactMark:
    """Baseline of an exact-tracer mark: ``None`` when tracing began at the mark."""

    baseline: dict[tuple[Any, ...], tuple[int, int]] | None


class ExactTracer:
    """The exact tracer: tracemalloc, shared and reference counted.

    It respects a tracemalloc started by someone else: it never stops what it did
    not start, and in that case uses the traceback limit already in force.
    """

    name = "exact"
    estimate = False

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._users = 0
        self._we_started = False
        self._fresh = False
        self.peaks = PeakFolder(lambda: tracemalloc.get_traced_memory()[1], tracemalloc.reset_peak)

    def start(self, depth: int) -> None:
        check_depth(depth, what="depth", error=TracerError)
        with self._lock:
            if self._users == 0:
                if tracemalloc.is_tracing():
                    self._we_started = False
                    self._fresh = False
                else:
                    tracemalloc.start(depth)
                    self._we_started = True
                    self._fresh = True
            self._users += 1

    def stop(self) -> None:
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                if self._we_started and tracemalloc.is_tracing():
                    tracemalloc.stop()
                self._we_started = False
                self._fresh = False

    def is_running(self) -> bool:
        return self._users > 0

    @property
    def started_by_us(self) -> bool:
        """True when this tracer started tracemalloc (and so will stop it)."""
        return self._we_started

    def depth(self) -> int:
        return tracemalloc.get_traceback_limit() if tracemalloc.is_tracing() else 0

    def current(self) -> int:
        if not tracemalloc.is_tracing():
            return 0
        return tracemalloc.get_traced_memory()[0]

    def peak(self) -> int:
        if not tracemalloc.is_tracing():
            return 0
        return tracemalloc.get_traced_memory()[1]

    def reset_peak(self) -> None:
        if tracemalloc.is_tracing():
            self.peaks.reset()

    def cost_hint(self) -> int:
        """A number that grows with what a snapshot costs (tracemalloc's own memory)."""
        return tracemalloc.get_tracemalloc_memory() if tracemalloc.is_tracing() else 0

    def mark(self) -> object:
        with self._lock:
            if self._fresh:
                # Tracing began just now for this mark: nothing older is traced.
                self._fresh = False
                return _ExactMark(None)
        return _ExactMark(_group_traces(_raw_traces()))

    def snapshot(self, since: object) -> TraceSnapshot:
        if not isinstance(since, _ExactMark):
            raise TracerError(f"snapshot(since={since!r}) needs a mark made by this tracer's mark()")
        began = time.perf_counter()
        if not tracemalloc.is_tracing():
            return TraceSnapshot((), 0, False, began, 0.0)
        groups = _group_traces(_raw_traces())
        baseline = since.baseline
        stats: list[StackStat] = []
        total = 0
        for tb, (size_i, count_i) in groups.items():
            if baseline is not None:
                old = baseline.get(tb)
                if old is not None:
                    size_i -= old[0]
                    count_i -= old[1]
                    if size_i <= 0:
                        continue
            frames = tuple((str(f), int(n)) for f, n in tb)
            stats.append(StackStat(frames, size_i, max(count_i, 0), size_i, max(count_i, 0)))
            total += size_i
        now = time.perf_counter()
        return TraceSnapshot(tuple(stats), total, False, now, now - began)


#: The process-wide exact tracer.
EXACT_TRACER = ExactTracer()


def available_tracers() -> dict[str, Tracer]:
    """Tracers that can run in this process, by name (``"exact"`` always)."""
    tracers: dict[str, Tracer] = {"exact": EXACT_TRACER}
    try:
        sampled = importlib.import_module("cgmem_nb.engine.sampled")
    except ImportError:
        return tracers
    tracer = sampled.get_tracer()
    if tracer is not None:
        tracers["sampled"] = tracer
    return tracers
