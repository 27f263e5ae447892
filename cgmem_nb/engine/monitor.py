"""One monitor thread per process: samples RSS and traced bytes for its subscribers.

The thread runs only while something subscribes and stops when the last
subscription closes. Subscribers (sessions, the live panel, the dashboard, the
guard) get every :class:`Tick` on the monitor thread and must return quickly.

While the event bus (:data:`cgmem_nb.engine.events.EVENT_BUS`) has listeners
(and the publishing gate, :meth:`Monitor.set_publish_gate`, allows it), each
tick is also published there as a :class:`~cgmem_nb.engine.events.Sample`
carrying the limit and the pressure level in force, and a
:class:`~cgmem_nb.engine.events.MemoryPressure` is published when RSS crosses a
level against the limit given by :meth:`Monitor.set_limit_reader` (the one
pressure policy, :mod:`cgmem_nb.engine.pressure`, with hysteresis).
This thread is the only sampler: the live views and event receivers keep it
running with a subscription (a "lease") instead of sampling on their own.

A C call that holds the GIL stops every Python thread, this one too: no ticks
arrive during it, and the timeline shows a gap. The kernel's peak RSS
(:mod:`cgmem_nb.engine.probes`) still records the peak reached inside the call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError
from ..schema.levels import PressureLevel
from . import probes
from .events.bus import EVENT_BUS, EventBus
from .events.kinds import Sample
from .pressure import PressureTracker, level_for
from .subscription import Subscription

log = logging.getLogger(__name__)

#: Default seconds between ticks.
DEFAULT_INTERVAL = 0.1
#: Seconds between ticks a subscriber may ask for (a NaN, an infinity or 1e-9 would stall
#: the thread or the kernel).
MIN_INTERVAL = 0.001
MAX_INTERVAL = 86_400.0


@dataclass(frozen=True, slots=True)
class Tick:
    """One reading of the process."""

    #: ``time.perf_counter()`` at the reading.
    perf: float
    #: ``time.time()`` at the reading.
    wall: float
    rss_bytes: int
    #: Bytes the running tracer sees, or None when no tracer runs.
    traced_bytes: int | None


TickCallback = Callable[[Tick], object]
TracedReader = Callable[[], "int | None"]
LimitReader = Callable[[], int]
PublishGate = Callable[[], bool]

#: Seconds a limit read through the limit reader is reused (cgroup files are not free).
_LIMIT_TTL_S = 1.0


class Monitor:
    """The process-wide sampler thread with subscribers and a bounded timeline."""

    def __init__(self, timeline_size: int = 36_000) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription[Tick]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._traced_reader: TracedReader = lambda: None
        #: Recent ticks, oldest first (bounded).
        self.timeline: deque[Tick] = deque(maxlen=timeline_size)
        self.bus: EventBus = EVENT_BUS
        self._limit_reader: LimitReader | None = None
        self._publish_gate: PublishGate = _always
        self._limit = 0
        self._limit_read_at = float("-inf")
        self._tracker: PressureTracker | None = None
        self._publishing = False
        self._started_perf = time.perf_counter()

    def set_limit_reader(self, reader: LimitReader) -> None:
        """Set the function that returns the memory limit in bytes (for pressure levels)."""
        self._limit_reader = reader
        self._limit_read_at = float("-inf")

    def set_publish_gate(self, gate: PublishGate) -> None:
        """Set the function that says whether ticks may be published on the bus now
        (the process-wide profiler's ``ProfilerConfig.real_time_monitoring``)."""
        self._publish_gate = gate

    def pressure_level(self, current: int, limit: int) -> PressureLevel:
        """The level ``current`` bytes are at against ``limit``: the level in force (with its
        hysteresis) while the monitor publishes against that limit, else the policy's level."""
        tracker = self._tracker
        if self._publishing and tracker is not None and tracker.limit == limit:
            return tracker.level
        return level_for(current, limit)

    def keep_alive(self, interval: float = DEFAULT_INTERVAL) -> Subscription[Tick]:
        """A subscription that only keeps the thread ticking (and publishing) until closed."""
        return self.subscribe(_ignore_tick, interval)

    def set_traced_reader(self, reader: TracedReader) -> None:
        """Set the function that returns the running tracer's bytes (or None)."""
        self._traced_reader = reader

    def subscribe(self, callback: TickCallback, interval: float = DEFAULT_INTERVAL) -> Subscription[Tick]:
        """Call ``callback(tick)`` on the monitor thread every ``interval`` seconds (the
        smallest interval among subscribers wins). Starts the thread if needed; close the
        subscription to stop (the thread stops when no subscription is left)."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise ConfigError(
                f"monitor interval={interval!r} is not accepted: give seconds from {MIN_INTERVAL} to {MAX_INTERVAL:.0f}"
            )
        sub: Subscription[Tick] = Subscription(callback, self._remove, interval=interval)
        with self._lock:
            self._subs.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._started_perf = time.perf_counter()
                self._publishing = False
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="cgmem-monitor", daemon=True
                )
                self._thread.start()
        return sub

    def _remove(self, sub: Subscription[Tick]) -> None:
        thread = None
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
            if not self._subs and self._thread is not None:
                self._stop.set()
                thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    @property
    def running(self) -> bool:
        """True while the monitor thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def read(self) -> Tick:
        """Take one reading now (on the calling thread)."""
        try:
            traced = self._traced_reader()
        except Exception:  # a tracer stopping under us must not kill the reading
            traced = None
        rss = probes.rss()
        probes.KERNEL_PEAK.observe(rss)
        return Tick(time.perf_counter(), time.time(), rss, traced)

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                subs = list(self._subs)
            if not subs:
                break
            try:
                tick = self.read()
            except Exception:  # pragma: no cover - psutil failing is not worth a dead thread
                log.exception("cgmem_nb monitor could not read the process")
                stop.wait(1.0)
                continue
            self.timeline.append(tick)
            self._publish(tick)
            for sub in subs:
                sub.deliver(tick, "monitor tick")
            stop.wait(min(s.interval or DEFAULT_INTERVAL for s in subs))

    def _publish(self, tick: Tick) -> None:
        """Publish the tick (and a pressure crossing) on the bus if anyone listens; never raises."""
        bus = self.bus
        if not bus.has_listeners or not self._gate_open():
            self._publishing = False
            return
        try:
            if not self._publishing and self._tracker is not None:
                # Listeners (re)appeared: announce the level in force from LOW again.
                self._tracker.reset()
            if not self._publishing:
                self._limit_read_at = float("-inf")
            self._publishing = True
            # The crossing goes first, so a listener that redraws on the Sample shows the new level.
            tracker = self._pressure_tracker(tick.perf)
            event = tracker.update(tick.rss_bytes) if tracker is not None else None
            if event is not None:
                bus.publish(event)
            bus.publish(
                Sample(
                    t_s=tick.perf - self._started_perf,
                    rss_bytes=tick.rss_bytes,
                    traced_bytes=tick.traced_bytes,
                    limit_bytes=tracker.limit if tracker is not None else None,
                    level=tracker.level if tracker is not None else None,
                    timestamp=tick.wall,
                )
            )
        except Exception:
            log.exception("cgmem_nb monitor could not publish a tick")

    def _gate_open(self) -> bool:
        try:
            return bool(self._publish_gate())
        except Exception:  # a gate that cannot answer must not stop the thread
            log.exception("cgmem_nb monitor: the publishing gate raised")
            return False

    def _pressure_tracker(self, now: float) -> PressureTracker | None:
        if self._limit_reader is None:
            return None
        if now - self._limit_read_at >= _LIMIT_TTL_S:
            self._limit_read_at = now
            limit = int(self._limit_reader())
            if limit != self._limit or self._tracker is None:
                self._limit = limit
                self._tracker = PressureTracker(limit) if limit > 0 else None
        return self._tracker


def _ignore_tick(tick: Tick) -> None:
    """The callback of :meth:`Monitor.keep_alive` subscriptions."""


def _always() -> bool:
    return True


#: The process-wide monitor.
MONITOR = Monitor()
