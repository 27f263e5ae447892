"""What every tracer offers and hands back: the :class:`Tracer` protocol and its records.

A tracer is process-wide and reference counted: ``start()`` / ``stop()`` pair up,
and nested sessions share one running tracer. ``mark()`` remembers "now" and
``snapshot(since=mark)`` returns what was allocated after that mark, grouped by
stack. The tracers themselves live in :mod:`cgmem_nb.engine.tracers` (exact) and
:mod:`cgmem_nb.engine.sampled` (sampled); both import this module and nothing
imports them back.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol, runtime_checkable

__all__ = ["Frame", "StackStat", "TraceSnapshot", "Tracer", "PeakKeeper", "PeakFolder", "DOMAINS", "NATIVE_DOMAINS"]

#: A frame as tracers report it: (filename, line number).
Frame = tuple[str, int]

#: Every value of :attr:`StackStat.domain`, Python's allocators first.
DOMAINS = ("python", "numpy", "c heap", "mmap", "library pool")
#: The domains outside Python's allocators (what the native hooks see).
NATIVE_DOMAINS = frozenset({"c heap", "mmap", "library pool"})


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
    #: Where the bytes came from (sampled tracer only): ``"python"`` (PyMem objects),
    #: ``"numpy"`` (numpy's data buffers), ``"c heap"`` (malloc and its family),
    #: ``"mmap"`` (anonymous mappings) or ``"library pool"`` (an allocator inside a
    #: library: jemalloc in Polars/Arrow/DuckDB, Arrow's mimalloc). None: not known.
    domain: str | None = None
    #: How the stack was found when the allocating thread could not give its own:
    #: ``"worker thread"`` (a thread with no Python frame, charged to the statement the
    #: session runs) or ``"GIL released"`` (the session's thread inside a C call).
    via: str | None = None


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


@runtime_checkable
class PeakKeeper(Protocol):
    """A tracer that keeps the composition of its own high-water mark (the sampled tracer)."""

    #: True when :meth:`peak_snapshot` is available.
    keeps_peak: bool

    def peak_snapshot(self, since: object) -> TraceSnapshot:
        """What was live at the peak since the last ``reset_peak()``, of what was allocated after ``since``."""


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
