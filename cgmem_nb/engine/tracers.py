"""Tracers: what sees allocations, and which of them can run here.

Every tracer follows the :class:`~cgmem_nb.engine.protocol.Tracer` protocol so that
sessions, results, the analysis and the outputs never care which one ran (the
protocol and its records live in :mod:`cgmem_nb.engine.protocol` and are
re-exported here). This module holds the exact tracer (tracemalloc) and
:func:`available_tracers`; the sampled tracer lives in
:mod:`cgmem_nb.engine.sampled`, which this module imports (never the other way).
"""

from __future__ import annotations

import threading
import time
import tracemalloc
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from ..config import check_depth
from ..errors import TracerError
from . import sampled
from .protocol import Frame, PeakFolder, StackStat, Tracer, TraceSnapshot
from .versions import exact_unsupported_reason

__all__ = [
    "EXACT_TRACER",
    "ExactTracer",
    "Frame",
    "PeakFolder",
    "StackStat",
    "TraceSnapshot",
    "Tracer",
    "available_tracers",
]

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
        reason = exact_unsupported_reason()
        if reason is not None:
            raise TracerError(f"the exact tracer cannot run here: {reason}")
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
    """Tracers that can run in this process, by name.

    ``"exact"`` everywhere but on free-threaded builds (see
    :mod:`cgmem_nb.engine.versions`); ``"sampled"`` where the native sampler loads.
    """
    tracers: dict[str, Tracer] = {}
    if exact_unsupported_reason() is None:
        tracers["exact"] = EXACT_TRACER
    tracer = sampled.get_tracer()
    if tracer is not None:
        tracers["sampled"] = tracer
    return tracers
