"""The private, mutable state of one running session, and how it becomes a result.

A recording starts a tracer, remembers where it started, and keeps what was
live at the highest traced level it has seen. When it stops it turns the final
and peak snapshots into a :class:`ProfileResult`.

The sampled tracer keeps the composition of its high-water mark itself (in C,
at no cost per sample), so its recording never snapshots while it runs: it
reads the peak composition when the tracer's peak is folded (at its stop, and
when a nested session resets the shared peak). The exact tracer (tracemalloc)
cannot, so for it checkpoints (from the monitor thread and, for cells, from
every statement) snapshot the live set at new highs. That cost is bounded: a
checkpoint snapshots only when the traced level has grown by at least 2% (and
1 MiB) since the last snapshot, and only while the time spent in snapshots
(predicted from the last one) stays under 3% of the session plus 0.1 s.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import tracemalloc
from datetime import datetime, timezone
from types import FrameType
from typing import TYPE_CHECKING

from ..config import ProfilerConfig
from ..engine import probes
from ..engine.monitor import MONITOR, Tick
from ..engine.subscription import Subscription
from ..engine.protocol import PeakKeeper
from ..engine.tracers import TraceSnapshot, Tracer
from ..schema import Summary
from . import notebook, rows
from .deferred import Deferred, deferred_frame
from .result import ProfileResult
from .snapshots import StackKey, by_key

if TYPE_CHECKING:
    import pandas as pd

_MIN_GROWTH = 1 << 20
_GROWTH_FRACTION = 0.02
_BUDGET_FIXED_S = 0.1
_BUDGET_FRACTION = 0.03
_MAX_STACK_ROWS = 500
_MAX_LINE_ROWS = 1000

@functools.lru_cache(maxsize=1024)
def _skipped(filename: str) -> bool:
    return notebook.is_own(filename) or filename.endswith(("contextlib.py", "functools.py"))


def user_frame(frame: FrameType | None) -> FrameType | None:
    """``frame`` or the first of its callers outside cgmem_nb (and contextlib)."""
    while frame is not None and _skipped(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


class Recording:
    """One session's recording. Not thread-safe for start/stop; checkpoints are."""

    def __init__(
        self,
        *,
        tracer: Tracer | None,
        config: ProfilerConfig,
        label: str,
        cell: int | None,
        depth: int,
        limit: probes.MemoryLimit,
        tracer_note: str | None = None,
    ) -> None:
        self.tracer = tracer
        self.config = config
        self.label = label
        self.cell = cell
        self.depth = depth
        self.limit = limit
        self.tracer_note = tracer_note
        self._lock = threading.Lock()
        self._sub: Subscription[Tick] | None = None
        self._mark: object = None
        self._ticks: list[tuple[float, int, int | None]] = []
        self._peak_snap: TraceSnapshot | None = None
        self._snap_level = 0
        self._snap_cost = 0.0
        self._last_cost = 0.0
        self._last_hint = 0
        self._held_max: dict[StackKey, tuple[int, int]] = {}
        self._traced_peak = 0
        self._rss_peak = 0
        #: The tracer keeps its peak composition itself (no checkpoint snapshots).
        self._keeper = tracer if isinstance(tracer, PeakKeeper) and tracer.keeps_peak else None
        self.keeps_peak = self._keeper is not None
        #: Seconds into the session when tracemalloc was found stopped (exact tracer), else None.
        self._tracing_lost: float | None = None
        self.native = False
        self.running = False

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start tracing and sampling. Raises if the tracer cannot start."""
        self.started_wall = time.time()
        # Subscribe first: the monitor thread's own start-up is then not traced.
        self._sub = MONITOR.subscribe(self._on_tick, self.config.sample_interval)
        self.t0 = time.perf_counter()
        self.rss_before = probes.rss()
        self._rss_peak = self.rss_before
        try:
            if self.tracer is not None:
                self.tracer.start(self.depth)
                try:
                    self.depth_used = self.tracer.depth()
                    self._mark = self.tracer.mark()
                    # Reset (which folds the old peak into outer sessions) before listening.
                    self.tracer.reset_peak()
                    peaks = getattr(self.tracer, "peaks", None)
                    if peaks is not None:
                        peaks.add(self._on_traced_peak)
                    self.traced_start = self.tracer.current()
                    self.native = bool(getattr(self.tracer, "native_running", lambda: False)())
                except BaseException:
                    self.tracer.stop()
                    raise
            else:
                self.traced_start = 0
                self.depth_used = 0
        except BaseException:
            self._sub.close()
            raise
        self._traced_peak = self.traced_start
        self.announce(sys._getframe(1))
        probes.KERNEL_PEAK.reset()
        probes.KERNEL_PEAK.peaks.add(self._on_rss_peak)
        self._ticks.append((0.0, self.rss_before, 0 if self.tracer else None))
        self.running = True

    def announce(self, frame: FrameType | None) -> None:
        """The statement the session's thread runs now (``frame``, or its first caller
        outside cgmem_nb): native samples without a Python stack are charged to it."""
        announce = getattr(self.tracer, "announce", None)
        if announce is not None:
            announce(user_frame(frame))

    def _on_traced_peak(self, value: int) -> None:
        # Called with the tracer's peak before anyone resets it, and at this recording's stop.
        if value > self._traced_peak:
            self._traced_peak = value
            if self._keeper is not None and self._mark is not None:
                snap = self._keeper.peak_snapshot(self._mark)
                self._snap_cost += snap.cost_s
                self._peak_snap = snap
                self._snap_level = snap.live_bytes

    def _on_rss_peak(self, value: int) -> None:
        if value > self._rss_peak:
            self._rss_peak = value

    def _on_tick(self, tick: Tick) -> None:
        if not self.running:
            return
        traced = None if tick.traced_bytes is None or self.tracer is None else tick.traced_bytes - self.traced_start
        self._ticks.append((tick.perf - self.t0, tick.rss_bytes, traced))
        if tick.rss_bytes > self._rss_peak:
            self._rss_peak = tick.rss_bytes
        self.checkpoint()

    def checkpoint(self) -> None:
        """Snapshot if the traced level is a new high (within the cost budget)."""
        tracer = self.tracer
        if tracer is None or self.keeps_peak or not self.running or not self._lock.acquire(blocking=False):
            return
        try:
            if tracer.name == "exact" and self._tracing_lost is None:
                self._check_tracemalloc()
            level = tracer.current() - self.traced_start
            if level < self._snap_level + max(_MIN_GROWTH, _GROWTH_FRACTION * self._snap_level):
                return
            elapsed = time.perf_counter() - self.t0
            hint = getattr(tracer, "cost_hint", None)
            size = hint() if hint is not None else 0
            predicted = self._last_cost * (size / self._last_hint) if self._last_hint else 0.0
            if self._snap_cost + predicted > _BUDGET_FIXED_S + _BUDGET_FRACTION * elapsed:
                return
            snap = self._snapshot(tracer)
            self._snap_cost += snap.cost_s
            self._last_cost, self._last_hint = snap.cost_s, size
            self._take(snap)
        finally:
            self._lock.release()

    def _snapshot(self, tracer: Tracer) -> TraceSnapshot:
        """``tracer.snapshot(mark)``, noting a tracemalloc that someone stopped under the session."""
        if tracer.name == "exact":
            self._check_tracemalloc()
        return tracer.snapshot(self._mark)

    def _check_tracemalloc(self) -> None:
        """Remember (once) that tracemalloc stopped while the exact tracer's session ran."""
        if self._tracing_lost is None and not tracemalloc.is_tracing():
            self._tracing_lost = max(time.perf_counter() - self.t0, 0.0)

    def snapshot_now(self) -> TraceSnapshot | None:
        """Snapshot the live allocations now, whatever the level (the guard does, when it
        fires), and keep it if it is the highest yet. None when nothing is traced."""
        tracer = self.tracer
        if tracer is None or not self.running:
            return None
        with self._lock:
            snap = self._snapshot(tracer)
            self._snap_cost += snap.cost_s
            self._take(snap)
        return snap

    def _take(self, snap: TraceSnapshot) -> None:
        if snap.live_bytes >= self._snap_level:
            self._peak_snap = snap
            self._snap_level = snap.live_bytes
        held = self._held_max
        for key, stat in by_key(snap.stats).items():
            old = held.get(key)
            if old is None or stat.live_bytes > old[0]:
                held[key] = (stat.live_bytes, stat.live_count)

    def stop(self, error: BaseException | None = None) -> ProfileResult:
        """Stop tracing and build the result. Always stops the tracer, even on error."""
        self.running = False
        tracer = self.tracer
        final: TraceSnapshot | None = None
        traced_end = 0
        try:
            if tracer is not None:
                with self._lock:
                    if tracer.name == "exact":
                        self._check_tracemalloc()
                    traced_end = tracer.current()
                    peaks = getattr(tracer, "peaks", None)
                    if peaks is not None:
                        peaks.fold()  # this recording's listener reads the peak composition
                        peaks.remove(self._on_traced_peak)
                    final = self._snapshot(tracer)
                    self._snap_cost += final.cost_s
                    if final.live_bytes >= self._snap_level:
                        self._peak_snap = final
                        self._snap_level = final.live_bytes
        finally:
            if tracer is not None:
                tracer.stop()
            probes.KERNEL_PEAK.peaks.fold()
            probes.KERNEL_PEAK.peaks.remove(self._on_rss_peak)
            if self._sub is not None:
                # After the tracer stops: the monitor thread's exit is then not traced.
                self._sub.close()
                self._sub = None
        duration = time.perf_counter() - self.t0
        rss_after = probes.rss()
        build_started = time.perf_counter()
        summary, tables = self._build(final, traced_end, rss_after, duration, error)
        build_s = time.perf_counter() - build_started
        return ProfileResult(summary.replace(report_s=round(build_s + self._snap_cost, 6)), tables, copy=False)

    # -- building the result ------------------------------------------------------------
    def _note(self) -> str | None:
        notes = [self.tracer_note] if self.tracer_note else []
        if self._tracing_lost is not None:
            notes.append(
                f"tracemalloc was stopped about {self._tracing_lost:.2f} s into the session (tracemalloc.stop() "
                "outside cgmem_nb): allocations after that were not traced, so the traced figures and the "
                "line tables undercount; leave tracemalloc running while an --exact session runs"
            )
        return "; ".join(notes) or None

    def _build(
        self,
        final: TraceSnapshot | None,
        traced_end: int,
        rss_after: int,
        duration: float,
        error: BaseException | None,
    ) -> tuple[Summary, dict[str, pd.DataFrame | Deferred]]:
        tracer = self.tracer
        estimate = bool(tracer is not None and tracer.estimate)
        stack_rows, own_bytes = rows.stack_rows(self._peak_snap, final, self._held_max, estimate)
        peak_bytes = max(self._traced_peak - self.traced_start, 0) if tracer is not None else 0
        sums = rows.totals(stack_rows, peak_bytes)
        lines = sums.lines
        traced_now = (traced_end - self.traced_start) if tracer is not None else None
        ticks = self._ticks + [(duration, rss_after, traced_now)]
        interval = self.config.sample_interval
        timeline = []
        last_t = 0.0
        for t, rss, traced in ticks:
            timeline.append({"t_s": t, "rss_bytes": rss, "traced_bytes": traced, "gap": (t - last_t) > 3 * interval + 0.05})
            last_t = t
        rss_peak = max(self._rss_peak, rss_after, *(r for _, r, _ in ticks))
        if not probes.KERNEL_PEAK.resettable:
            rss_peak = max(rss_peak, self.rss_before)

        retained = (traced_end - self.traced_start) if tracer is not None else 0
        allocated = sum(r["allocated_bytes"] for r in stack_rows) if tracer is not None else 0
        peak_lines = sum(r["peak_bytes"] for r in stack_rows)
        native_peak = sum(r["native_peak_bytes"] for r in lines)
        rss_growth = rss_peak - self.rss_before
        sampling = getattr(tracer, "interval", None) if estimate else None
        summary = Summary(
            label=self.label,
            cell=self.cell,
            tracer=tracer.name if tracer is not None else "disabled",
            estimate=estimate,
            started_at=datetime.fromtimestamp(self.started_wall, timezone.utc).isoformat(),
            duration_s=round(duration, 6),
            peak_bytes=peak_bytes,
            retained_bytes=retained,
            allocated_bytes=max(allocated, peak_bytes) if tracer is not None else 0,
            traced_start_bytes=self.traced_start,
            peak_coverage=round(min(peak_lines / peak_bytes, 1.0), 4) if peak_bytes else 1.0,
            rss_before_bytes=self.rss_before,
            rss_after_bytes=rss_after,
            rss_peak_bytes=rss_peak,
            limit_bytes=self.limit.bytes,
            limit_source=self.limit.source,
            stack_depth=self.depth_used,
            sample_interval_bytes=int(sampling) if isinstance(sampling, int) else None,
            stacks_total=len(stack_rows),
            error=None if error is None else f"{type(error).__name__}: {error}",
            interrupted=isinstance(error, KeyboardInterrupt),
            note=self._note(),
            profiler_bytes=own_bytes,
            native=self.native,
            python_peak_bytes=max(peak_lines - native_peak, 0),
            native_peak_bytes=native_peak,
            native_retained_bytes=sum(r["native_retained_bytes"] for r in lines),
            worker_bytes=sums.worker_bytes,
            unknown_bytes=sums.unknown_bytes,
            rss_explained=round(min(peak_lines / rss_growth, 1.0), 4) if tracer is not None and rss_growth > 0 else None,
        )
        # DataFrames are built when first read: the session's end stays proportional to its samples.
        tables: dict[str, pd.DataFrame | Deferred] = {
            "lines": deferred_frame("lines", lines[:_MAX_LINE_ROWS]),
            "stacks": deferred_frame("stacks", stack_rows[:_MAX_STACK_ROWS]),
            "categories": deferred_frame("categories", sums.categories),
            "threads": deferred_frame("threads", sums.threads),
            "timeline": deferred_frame("timeline", timeline),
        }
        return summary, tables
