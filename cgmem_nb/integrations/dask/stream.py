"""The kernel side of the event stream: what the workers and the scheduler plugin say during a session.

The kernel subscribes to :data:`~.protocol.TOPIC` (``client.subscribe_topic``) for
the span of a profiled session. The handler runs on the client's event loop
thread; it keeps each worker's readings, finished tasks and fate (a lost worker
cannot answer at the end, so what it said before is what the result shows), and
publishes them on the profiler's event bus: ``WorkerSample``, ``TasksFinished``,
``MemoryPressure`` and ``LeakDetected`` with ``where`` the worker, ``WorkerLost``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ...analysis.cluster import worker_leaks
from ...engine.events.bus import EVENT_BUS
from ...engine.events.kinds import FinishedTask, LeakDetected, MemoryPressure, TasksFinished, WorkerLost, WorkerSample
from ...schema import PressureLevel

__all__ = ["ClusterStream", "WorkerTrace"]

log = logging.getLogger(__name__)

#: Readings kept per worker on the kernel side.
_READINGS_KEPT = 20_000
#: Latest tasks per worker the live leak check reads, and how often it runs per worker (seconds).
_LEAK_WINDOW = 2_000
_LEAK_CHECK_S = 1.0


@dataclass
class WorkerTrace:
    """What one worker said during the session."""

    address: str
    #: ``(wall, rss, traced, managed, executing)`` per reading.
    readings: list[tuple[float, int, int, int, str]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    limit: int = 0
    executing: list[str] = field(default_factory=list)
    #: Set when the scheduler removed it: the tasks it was processing.
    removed: list[str] | None = None
    #: The process memory its nanny saw when it killed it for memory.
    killed_rss: int | None = None
    added: bool = False
    pressure: str | None = None
    #: Unix time of the last live leak check.
    leak_checked: float = 0.0


class ClusterStream:
    """The messages of one session, by worker. Thread-safe."""

    def __init__(self, session_id: str, publishing: Callable[[], bool]) -> None:
        self.session_id = session_id
        self._publishing = publishing
        self._lock = threading.Lock()
        self.workers: dict[str, WorkerTrace] = {}
        #: Set when the scheduler plugin ended the session (its client left).
        self.abandoned = False
        self._leaks_seen: set[str] = set()

    def trace(self, address: str) -> WorkerTrace:
        """The trace of ``address`` (made on first use)."""
        with self._lock:
            found = self.workers.get(address)
            if found is None:
                found = self.workers[address] = WorkerTrace(address)
            return found

    def handle(self, event: tuple[float, Any]) -> None:
        """Take one event of the topic (``client.subscribe_topic`` calls this)."""
        try:
            self._handle(event[1])
        except Exception:  # a bad message must not stop the stream
            log.exception("cgmem_nb: a message from the cluster could not be read")

    def _handle(self, msg: Any) -> None:
        if not isinstance(msg, dict):
            return
        mine = msg.get("session") == self.session_id or self.session_id in (msg.get("sessions") or ())
        if not mine:
            return
        kind, worker = msg.get("type"), msg.get("worker")
        if kind == "session-abandoned":
            self.abandoned = True
            return
        if not isinstance(worker, str):
            return
        trace = self.trace(worker)
        if kind == "tick":
            self._on_tick(trace, msg)
        elif kind == "pressure":
            trace.pressure = str(msg.get("level"))
            self._publish(MemoryPressure(PressureLevel(msg["level"]), int(msg["rss"]), int(msg["limit"]), where=worker))
        elif kind == "worker-added":
            trace.added = True
        elif kind == "worker-memory-kill":
            trace.killed_rss = int(msg.get("rss") or 0) or None
            if trace.removed is not None:  # the removal was heard first: say why now
                self._publish(WorkerLost(worker, "killed by its nanny for memory", tuple(trace.removed), trace.killed_rss))
        elif kind == "worker-removed":
            trace.removed = [str(k) for k in msg.get("processing") or ()] or list(trace.executing)
            reason = "killed by its nanny for memory" if trace.killed_rss else "removed from the cluster"
            last = trace.readings[-1][1] if trace.readings else None
            self._publish(WorkerLost(worker, reason, tuple(trace.removed), trace.killed_rss or last))

    def _on_tick(self, trace: WorkerTrace, msg: dict[str, Any]) -> None:
        executing = [str(k) for k in msg.get("executing") or ()]
        reading = (float(msg["wall"]), int(msg["rss"]), int(msg["traced"]), int(msg["managed"]), ",".join(executing))
        tasks = [t for t in msg.get("tasks") or () if isinstance(t, dict)]
        with self._lock:
            trace.limit = int(msg.get("limit") or 0)
            trace.executing = executing
            if len(trace.readings) < _READINGS_KEPT:
                trace.readings.append(reading)
            trace.tasks.extend(tasks)
        if not self._publishing():  # nobody listens: the result is built from what was kept
            return
        self._publish(WorkerSample(trace.address, reading[1], reading[2], reading[3], trace.limit, tuple(executing)))
        if tasks:
            finished = tuple(
                FinishedTask(
                    str(t["key"]), str(t["prefix"]), float(t.get("duration_s") or 0.0),
                    t.get("peak_bytes"), t.get("retained_bytes"), t.get("result_bytes"),
                )
                for t in tasks
            )
            self._publish(TasksFinished(trace.address, finished))
            if reading[0] - trace.leak_checked >= _LEAK_CHECK_S:
                trace.leak_checked = reading[0]
                self._check_leaks(trace)

    def _check_leaks(self, trace: WorkerTrace) -> None:
        with self._lock:
            rows = trace.tasks[-_LEAK_WINDOW:]
        for leak in worker_leaks(rows, {trace.address: trace.limit}):
            step = f"{leak.leak_id}:{leak.growth.bit_length()}"  # again when it has doubled
            if step not in self._leaks_seen:
                self._leaks_seen.add(step)
                self._publish(LeakDetected(leak, where=trace.address))

    def _publish(self, event: Any) -> None:
        if self._publishing():
            EVENT_BUS.publish(event)
