"""``LiveFeed``: the one live feed the panel and the dashboard read.

A feed listens to the event bus through its profiler (``profiler.subscribe``,
which keeps the one monitor thread sampling) and keeps, bounded:

* **samples**: RSS, traced bytes, the limit and where ``CRITICAL`` starts, the
  pressure level in force and the allocation / deallocation rates;
* **pressure**: one :class:`~cgmem_nb.engine.pressure.PressureTracker` (the house's
  one policy, with hysteresis) against the profiler's limit;
* **gaps**: stretches without samples (a C call held the GIL), filled with the
  kernel's peak RSS when it grew meanwhile;
* **markers**: session and cell starts and ends (``SessionStarted`` /
  ``SessionFinished``, ``CellStarted`` / ``CellFinished`` events);
* **findings**: from ``LeakDetected`` / ``RecommendationGenerated`` events and polls;
* **figures**: current, peak, limit, traced, the running session, notes of finished cells;
* optionally **metrics** and categories, refreshed every ``metrics_interval`` seconds.

Readers keep a :class:`FeedCursor` and ask :meth:`LiveFeed.read` for what is new
since; listeners registered with :meth:`LiveFeed.listen` are told (on the
publishing thread) after every event. Everything is thread-safe.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from ...engine import probes
from ...engine.events.kinds import (
    CellFinished,
    CellStarted,
    LeakDetected,
    ProfilerEvent,
    RecommendationGenerated,
    Sample,
    SessionFinished,
    SessionStarted,
    TasksFinished,
    WorkerLost,
    WorkerSample,
)
from ...engine.pressure import PressureTracker, critical_bytes
from ...engine.subscription import Subscription
from ...schema import MemoryLeak, Recommendation, Summary
from ...units import format_bytes
from .. import export
from .cluster import ClusterFeed
from .records import FeedCursor, FeedFigures, FeedGap, FeedMarker, FeedSample, FeedUpdate, after

if TYPE_CHECKING:
    from ...session.profiler import MemoryProfiler

__all__ = ["LiveFeed"]

#: Seconds a limit read from the profiler is reused (cgroup files are not free).
_LIMIT_TTL_S = 1.0
_MARKERS_KEPT = 400
_FINDINGS_KEPT = 200


class LiveFeed:
    """Live samples, pressure, gaps, markers, findings and figures of one profiler.

    Args:
        profiler: whose limit, sessions and events to follow.
        history: samples kept.
        metrics_interval: seconds between refreshes of :attr:`metrics` and the category
            rows (None: no refresh; the panel needs none).
        interval: seconds between samples to ask of the monitor (default: the profiler's
            ``sample_interval``; the monitor ticks at the smallest interval any subscriber asks).
    """

    def __init__(
        self,
        profiler: MemoryProfiler,
        *,
        history: int = 3000,
        metrics_interval: float | None = None,
        interval: float | None = None,
    ) -> None:
        self.profiler = profiler
        self.history = history
        self.metrics_interval = metrics_interval
        self._lock = threading.RLock()
        self._samples: deque[FeedSample] = deque(maxlen=history)
        self._gaps: deque[FeedGap] = deque(maxlen=history)
        self._markers: deque[FeedMarker] = deque(maxlen=_MARKERS_KEPT)
        # One counter per kind: each deque's seqs are consecutive, so a reader's place is an offset.
        self._sample_seq, self._gap_seq, self._marker_seq = itertools.count(1), itertools.count(1), itertools.count(1)
        limit = profiler.memory_limit()
        self._limit, self._limit_source, self._limit_read_at = limit.bytes, limit.source, time.monotonic()
        self._tracker = PressureTracker(max(limit.bytes, 1))
        rss = probes.rss()
        traced = profiler.traced_bytes()
        self._figures = FeedFigures(
            rss, rss, traced, traced, limit.bytes, limit.source, self._tracker.level_for(rss),
            peak_since=time.strftime("%H:%M:%S"),
        )
        self._interval = interval if interval is not None else profiler.config.sample_interval
        self._last_wall: float | None = None
        self._last_hwm = probes.KERNEL_PEAK.read()
        self._prev_level: tuple[float, int, bool] | None = None
        self._cell: tuple[str, float, int] | None = None
        self._event_leaks: dict[str, MemoryLeak] = {}
        self._event_recs: dict[tuple[str, str], Recommendation] = {}
        self._polled_leaks: list[MemoryLeak] = []
        self._polled_recs: list[Recommendation] = []
        self._findings_version = 0
        #: Distinct leaks seen (events and polls), for the ``cgmem_leaks_detected_total`` counter.
        self.leaks_seen = 0
        self._leak_ids: set[str] = set()
        #: ``export.metrics_dict`` of the profiler, refreshed every ``metrics_interval`` (else empty).
        self.metrics: dict[str, Any] = {}
        self.categories: list[dict[str, Any]] = []
        self._metrics_version = 0
        self._metrics_at = float("-inf")
        #: A profiled Dask cluster's workers, task prefixes and top lines.
        self.cluster = ClusterFeed(history)
        self._listeners: list[Callable[[ProfilerEvent | None], object]] = []
        self._subscription: Subscription[ProfilerEvent] | None = None
        self.closed = False

    # -- life cycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the feed follows the event bus."""
        return self._subscription is not None

    def start(self) -> LiveFeed:
        """Follow the profiler's events (keeps the monitor sampling). Idempotent.

        Raises ``ConfigError`` when the profiler's ``real_time_monitoring`` is off.
        """
        if self._subscription is None and not self.closed:
            if self.metrics_interval is not None:
                self.refresh_metrics()
            self._subscription = self.profiler.subscribe(self.handle, interval=self._interval)
        return self

    def stop(self) -> None:
        """Stop following events (releases the monitor thread); what was read stays."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()

    def close(self, final: Summary | None = None) -> None:
        """Stop, and take the final figures from ``final`` (a finished session's summary)."""
        self.stop()
        with self._lock:
            self.closed = True
            if final is not None:
                f = self._figures
                current = final.rss_after_bytes or f.current_bytes
                traced = (final.retained_bytes, final.peak_bytes) if final.tracer != "disabled" else (f.traced_bytes, f.traced_peak_bytes)
                self._figures = replace(
                    f,
                    current_bytes=current,
                    peak_bytes=max(f.peak_bytes, final.rss_peak_bytes),
                    traced_bytes=traced[0],
                    traced_peak_bytes=traced[1],
                    level=self._tracker.level_for(current),
                    last_summary=final,
                    session_label=None,
                )
        self._notify()

    def listen(self, callback: Callable[[ProfilerEvent | None], object]) -> Callable[[], None]:
        """Call ``callback(event)`` after every event the feed takes (None after a poll, a mark or
        :meth:`close`); returns what stops it."""
        with self._lock:
            self._listeners.append(callback)

        def forget() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return forget

    # -- inputs ----------------------------------------------------------------------------
    def handle(self, event: ProfilerEvent) -> None:
        """Take one event (the bus calls this on the publishing thread)."""
        with self._lock:
            if isinstance(event, Sample):
                self._on_sample(event)
            elif isinstance(event, (LeakDetected, RecommendationGenerated)):
                self._on_finding(event)
            elif isinstance(event, (WorkerSample, TasksFinished, WorkerLost)):
                self.cluster.take(event)
            elif isinstance(event, SessionStarted):
                self._figures = replace(self._figures, session_label=event.label)
                self._mark(event.timestamp, event.label or "session", "start", "session")
            elif isinstance(event, SessionFinished):
                s = event.summary
                self._figures = replace(
                    self._figures,
                    session_label=None,
                    last_summary=s,
                    peak_bytes=max(self._figures.peak_bytes, s.rss_peak_bytes),
                )
                self._mark(event.timestamp, event.label or "session", "end", "session")
                if s.workers:
                    self.cluster.take_result(self.profiler.last_result)
            elif isinstance(event, CellStarted):
                self._on_cell_started(event)
            elif isinstance(event, CellFinished):
                self._on_cell_finished(event)
        self._notify(event)

    def set_findings(self, leaks: list[MemoryLeak], recommendations: list[Recommendation]) -> None:
        """The findings a poll found now (they replace the previous poll's)."""
        with self._lock:
            if leaks == self._polled_leaks and recommendations == self._polled_recs:
                return
            self._polled_leaks, self._polled_recs = list(leaks), list(recommendations)
            for leak in leaks:
                self._count_leak(leak)
            self._findings_version += 1
        self._notify()

    def mark(self, label: str, kind: str = "start", source: str = "cell", wall: float | None = None) -> None:
        """Add a marker by hand (``kind`` ``"start"`` or ``"end"``)."""
        with self._lock:
            self._mark(time.time() if wall is None else wall, label, kind, source)
        self._notify()

    def refresh_metrics(self) -> None:
        """Read the profiler's metrics and category rows now (the dashboard's header and bars)."""
        metrics = self.profiler.get_metrics()
        values = export.metrics_dict(self.profiler, metrics)
        categories = export.category_rows(self.profiler, metrics)
        with self._lock:
            self._metrics_at = time.monotonic()
            self.metrics = values
            if categories != self.categories:
                self.categories = categories
            self._metrics_version += 1

    # -- reading ---------------------------------------------------------------------------
    @property
    def figures(self) -> FeedFigures:
        """The figures now."""
        return self._figures

    def seed_sample(self, wall: float | None = None) -> FeedSample:
        """The figures now as a sample (seq 0) at ``wall`` (now): a first point for a chart."""
        f = self._figures
        return FeedSample(
            0, time.time() if wall is None else wall, f.current_bytes, f.traced_bytes, f.limit_bytes,
            critical_bytes(f.limit_bytes), f.level, 0.0, 0.0,
        )

    @property
    def samples(self) -> list[FeedSample]:
        """The samples kept, oldest first."""
        with self._lock:
            return list(self._samples)

    @property
    def gaps(self) -> list[FeedGap]:
        """The gaps kept, oldest first."""
        with self._lock:
            return list(self._gaps)

    @property
    def markers(self) -> list[FeedMarker]:
        """The markers kept, oldest first."""
        with self._lock:
            return list(self._markers)

    def findings(self) -> tuple[list[MemoryLeak], list[Recommendation]]:
        """The leaks and recommendations known now (the last poll's, then events' not in it)."""
        with self._lock:
            polled_leaks = {leak.leak_id for leak in self._polled_leaks}
            polled_recs = {(r.rule, r.target) for r in self._polled_recs}
            leaks = self._polled_leaks + [v for k, v in self._event_leaks.items() if k not in polled_leaks]
            recs = self._polled_recs + [v for k, v in self._event_recs.items() if k not in polled_recs]
            return leaks, recs

    def read(self, cursor: FeedCursor | None = None) -> FeedUpdate:
        """What is new since ``cursor`` (everything kept, for None), and the cursor to pass next."""
        cursor = cursor or FeedCursor()
        with self._lock:
            samples = after(self._samples, cursor.sample)
            gaps = after(self._gaps, cursor.gap)
            markers = after(self._markers, cursor.marker)
            leaks = recs = None
            if cursor.findings != self._findings_version:
                leaks, recs = self.findings()
            metrics = categories = None
            if self.metrics_interval is not None and cursor.metrics != self._metrics_version:
                metrics, categories = dict(self.metrics), list(self.categories)
            cluster, cluster_seq, cluster_version = self.cluster.since(cursor.cluster, cursor.cluster_version)
            new = FeedCursor(
                samples[-1].seq if samples else cursor.sample,
                gaps[-1].seq if gaps else cursor.gap,
                markers[-1].seq if markers else cursor.marker,
                self._findings_version,
                self._metrics_version if self.metrics_interval is not None else cursor.metrics,
                cluster_seq,
                cluster_version,
            )
            return FeedUpdate(new, self._figures, samples, gaps, markers, leaks, recs, metrics, categories, cluster)

    # -- internals -------------------------------------------------------------------------
    def _notify(self, event: ProfilerEvent | None = None) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(event)

    def refresh_limit(self) -> None:
        """Read the profiler's limit now (samples do, at most once a second) and follow it if it changed."""
        with self._lock:
            self._limit_read_at = time.monotonic()
            limit = self.profiler.memory_limit()
            if limit.bytes != self._limit:
                self._limit, self._limit_source = limit.bytes, limit.source
                self._tracker = PressureTracker(max(limit.bytes, 1))
                self._figures = replace(self._figures, limit_bytes=limit.bytes, limit_source=limit.source)

    def _on_sample(self, sample: Sample) -> None:
        if time.monotonic() - self._limit_read_at >= _LIMIT_TTL_S:
            self.refresh_limit()
        if self.metrics_interval is not None and time.monotonic() - self._metrics_at >= self.metrics_interval:
            self.refresh_metrics()
        wall, rss, traced = sample.timestamp, sample.rss_bytes, sample.traced_bytes
        hwm = probes.KERNEL_PEAK.read()
        f = self._figures
        peak = max(f.peak_bytes, rss)
        if self._last_wall is not None and wall - self._last_wall > max(0.5, 4 * self._interval):
            peak = max(peak, self._fill_gap(self._last_wall, wall, rss, hwm))
        self._last_wall, self._last_hwm = wall, hwm
        self._tracker.update(rss)
        alloc = dealloc = 0.0
        level_bytes = traced if traced is not None else rss
        # A rate only between two readings of the same measure (a session starting or
        # ending switches between RSS and traced bytes, which is no allocation).
        prev = self._prev_level
        if prev is not None and wall > prev[0] and prev[2] == (traced is not None):
            rate = (level_bytes - prev[1]) / (wall - prev[0])
            alloc, dealloc = max(rate, 0.0), max(-rate, 0.0)
        self._prev_level = (wall, level_bytes, traced is not None)
        self._samples.append(
            FeedSample(
                next(self._sample_seq), wall, rss, traced, self._limit, critical_bytes(self._limit),
                self._tracker.level, alloc, dealloc,
            )
        )
        traced_peak = f.traced_peak_bytes if traced is None else max(f.traced_peak_bytes or 0, traced)
        self._figures = replace(
            f,
            current_bytes=rss,
            peak_bytes=peak,
            traced_bytes=traced,
            traced_peak_bytes=traced_peak,
            limit_bytes=self._limit,
            limit_source=self._limit_source,
            level=self._tracker.level,
            alloc_bytes_s=alloc,
            dealloc_bytes_s=dealloc,
            gaps=len(self._gaps),
        )

    def _fill_gap(self, start: float, end: float, rss_after: int, hwm: int) -> int:
        """Mark a stretch without samples; fill it with the kernel peak if that grew meanwhile.
        Returns the RSS drawn for it."""
        before = self._samples[-1].rss_bytes if self._samples else self._figures.current_bytes
        neighbours = max(before, rss_after)
        # VmHWM only grows (a session may reset it: then trust it only above both neighbours).
        grew = hwm > self._last_hwm if hwm >= self._last_hwm else hwm > neighbours
        from_peak = grew and hwm > neighbours
        drawn = hwm if from_peak else neighbours
        self._gaps.append(FeedGap(next(self._gap_seq), start, end, drawn, from_peak))
        return drawn

    def _on_finding(self, event: LeakDetected | RecommendationGenerated) -> None:
        if isinstance(event, LeakDetected):
            self._event_leaks[event.leak.leak_id] = event.leak
            self._count_leak(event.leak)
            while len(self._event_leaks) > _FINDINGS_KEPT:
                self._event_leaks.pop(next(iter(self._event_leaks)))
        else:
            rec = event.recommendation
            self._event_recs[(rec.rule, rec.target)] = rec
            while len(self._event_recs) > _FINDINGS_KEPT:
                self._event_recs.pop(next(iter(self._event_recs)))
        self._findings_version += 1

    def _count_leak(self, leak: MemoryLeak) -> None:
        if leak.leak_id not in self._leak_ids:
            self._leak_ids.add(leak.leak_id)
            self.leaks_seen += 1

    def _mark(self, wall: float, label: str, kind: str, source: str) -> None:
        self._markers.append(FeedMarker(next(self._marker_seq), wall, label, kind, source))

    def _on_cell_started(self, event: CellStarted) -> None:
        rss = probes.rss()
        self._cell = (event.label, event.timestamp, rss)
        # the peak figure follows the current cell
        self._figures = replace(self._figures, current_bytes=rss, peak_bytes=rss, peak_since=f"{event.label} started")
        self._mark(event.timestamp, event.label, "start", "cell")

    def _on_cell_finished(self, event: CellFinished) -> None:
        self._mark(event.timestamp, event.label, "end", "cell")
        cell, self._cell = self._cell, None
        if cell is None:
            return
        label, started, before = cell
        now = probes.rss()
        f = self._figures
        peak = max(f.peak_bytes, now)
        note = (
            f"{event.label}: peak {format_bytes(peak)}, {format_bytes(now - before, signed=True)} "
            f"in {max(event.timestamp - started, 0.0):.1f} s"
        )
        self._figures = replace(f, current_bytes=now, peak_bytes=peak, cell_notes=(*f.cell_notes[-49:], note))
