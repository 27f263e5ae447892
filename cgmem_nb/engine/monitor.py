"""One monitor thread per process: samples RSS and traced bytes for its subscribers.

The thread runs only while something subscribes and stops when the last
subscription closes. Subscribers (sessions, the live panel, the dashboard, the
guard) get every :class:`Tick` on the monitor thread and must return quickly.

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

from . import probes

log = logging.getLogger(__name__)

#: Default seconds between ticks.
DEFAULT_INTERVAL = 0.1


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


TickCallback = Callable[[Tick], None]
TracedReader = Callable[[], "int | None"]


class Subscription:
    """A monitor subscription; close it (or use ``with``) to stop receiving ticks."""

    def __init__(self, monitor: "Monitor", callback: TickCallback, interval: float) -> None:
        self._monitor = monitor
        self.callback = callback
        self.interval = interval
        self.closed = False

    def close(self) -> None:
        """Stop receiving ticks; the thread stops when no subscription is left."""
        if not self.closed:
            self.closed = True
            self._monitor._remove(self)

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Monitor:
    """The process-wide sampler thread with subscribers and a bounded timeline."""

    def __init__(self, timeline_size: int = 36_000) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._traced_reader: TracedReader = lambda: None
        #: Recent ticks, oldest first (bounded).
        self.timeline: deque[Tick] = deque(maxlen=timeline_size)

    def set_traced_reader(self, reader: TracedReader) -> None:
        """Set the function that returns the running tracer's bytes (or None)."""
        self._traced_reader = reader

    def subscribe(self, callback: TickCallback, interval: float = DEFAULT_INTERVAL) -> Subscription:
        """Call ``callback(tick)`` on the monitor thread every ``interval`` seconds (the
        smallest interval among subscribers wins). Starts the thread if needed."""
        sub = Subscription(self, callback, interval)
        with self._lock:
            self._subs.append(sub)
            if self._thread is None or not self._thread.is_alive():
                self._stop = threading.Event()
                self._thread = threading.Thread(
                    target=self._run, args=(self._stop,), name="cgmem-monitor", daemon=True
                )
                self._thread.start()
        return sub

    def _remove(self, sub: Subscription) -> None:
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
            for sub in subs:
                if sub.closed:
                    continue
                try:
                    sub.callback(tick)
                except Exception:
                    log.exception("cgmem_nb monitor subscriber %r failed", sub.callback)
            stop.wait(min(s.interval for s in subs))


#: The process-wide monitor.
MONITOR = Monitor()
