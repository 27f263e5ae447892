"""``WorkerRecorder``: what the worker plugin records on one worker for one kernel session.

The plugin (:mod:`.worker`) makes one when it is set up on a worker. It runs the same engine and session
as the kernel (a :class:`~cgmem_nb.session.session.Session` of a private
profiler, so nothing is kept beyond the session), and:

* follows every task through the plugin's ``transition`` hook (on the worker's
  event loop): a mark of the tracer when it starts executing; when it ends, the
  samples taken since that mark *on the task's thread* give its retained and
  allocated bytes, and its peak is the tracer's peak over its span when it ran
  alone on the worker (the peak is reset at its start; the worker's own session
  keeps its peak through the tracer's peak folding), else the most its thread held
  at the worker's readings;
* every ``tick_s`` publishes a reading on the event topic (``worker.log_event``):
  process memory, traced bytes, Dask's managed bytes, the running tasks, the tasks
  finished since the last reading, and a message when the memory crosses a
  pressure level against Dask's memory limit;
* hands back everything when the kernel asks (:func:`collect`, through
  ``client.run``): the session's result (its lines and stacks), the tasks, the
  readings and the worker's figures.

Nothing here may break the worker: hooks log and carry on.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...engine import probes
from ...engine.pressure import PressureTracker
from ...engine.tracers import Tracer
from ...session import notebook
from ...session.profiler import MemoryProfiler
from ...session.session import Session
from .protocol import TOPIC, SessionSpec, key_group, key_prefix, key_text

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["WorkerRecorder", "native_reason"]

log = logging.getLogger(__name__)

#: Readings kept per worker and session (at 4 a second: over an hour).
_TIMELINE_KEPT = 20_000
#: Task rows kept per worker and session; beyond, the oldest go (and the result says so).
_TASKS_KEPT = 200_000
#: Task rows sent per reading (the rest go with the next ones).
_TASKS_PER_TICK = 2_000
_RUNNING = ("executing", "long-running")


class _Statm:
    """The process's RSS for every task row: ``/proc/self/statm`` read through a file kept open
    (about 4 µs on Linux, where ``probes.rss()`` through psutil takes about 30 µs, a lot beside a
    10 ms task); ``probes.rss()`` elsewhere."""

    def __init__(self) -> None:
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        try:
            self._fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._fd = None

    def rss(self) -> int:
        if self._fd is not None:
            try:
                return int(os.pread(self._fd, 128, 0).split()[1]) * self._page
            except (OSError, ValueError, IndexError):
                self.close()
        return probes.rss()

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@dataclass(slots=True)
class _Task:
    """A task running now, as the recorder follows it."""

    key: Any
    started: float
    mark: object
    level0: int
    exclusive: bool
    managed0: int
    #: The tracer's peak over the task's span, read when its thread was seen done.
    peak: int | None = None
    #: The most its thread held at a reading (tasks that ran beside others).
    polled: int = 0
    settled: bool = False
    thread: int | None = field(default=None)


class WorkerRecorder:
    """One worker's recording of one session: the session, the tasks, the readings."""

    def __init__(self, worker: Worker, spec: SessionSpec) -> None:
        self.worker = worker
        self.spec = spec
        self.address = str(worker.address)
        self.profiler = MemoryProfiler()
        self.session: Session | None = None
        self.tracer: Tracer | None = None
        self.error: str | None = None
        self.running: dict[Any, _Task] = {}
        self.done: list[dict[str, Any]] = []
        self.dropped = 0
        self._sent = 0
        self.timeline: deque[tuple[float, int, int, int, str]] = deque(maxlen=_TIMELINE_KEPT)
        limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None)
        self.limit = int(limit or 0)
        self.tracker = PressureTracker(self.limit) if self.limit else None
        self._statm = _Statm()
        self.rss_before = self.rss_peak = self._statm.rss()
        self.managed_start = self._managed()
        self.traced_start = 0
        self.tasks_peak = 0
        self._callback: Any = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker's session and its readings (on the worker's event loop)."""
        spec = self.spec
        try:
            session = self.profiler.session(
                self.address, tracer=spec.tracer, depth=spec.depth, interval=spec.interval, analyze=False  # type: ignore[arg-type]
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a tracer fallback: the result's note says it
                session.start()
        except Exception as exc:
            self.error = f"the profiler could not start on this worker: {type(exc).__name__}: {exc}"
            log.warning("cgmem_nb: %s", self.error)
            return
        self.session = session
        self.tracer = session.tracer
        self.traced_start = self.tracer.current() if self.tracer is not None else 0
        from tornado.ioloop import PeriodicCallback

        self._callback = PeriodicCallback(self._tick_safely, max(spec.tick_s, 0.05) * 1000)
        self._callback.start()

    def close(self) -> None:
        """Stop everything (the plugin's teardown); what was recorded is dropped."""
        self._statm.close()
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        session, self.session = self.session, None
        if session is not None and session.running:
            try:
                session.stop()
            except Exception:  # pragma: no cover - never let teardown fail the worker
                log.exception("cgmem_nb: stopping the worker's session failed")

    def finish(self, cells: dict[str, int]) -> dict[str, Any]:
        """Stop the session and hand back what it saw (plain data, for ``client.run``)."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None
        self._tick(send=False)
        base = self._identity()
        session, self.session = self.session, None
        if session is None or not session.running:
            return {**base, "status": "error", "error": self.error or "the worker's session was not running"}
        for filename, number in cells.items():
            notebook.register_cell(filename, number)
        now = time.time()
        for task in list(self.running.values()):  # still running: reported as such, with what is known
            self.done.append(self._row(task, "running", now, thread=task.thread))
        self.running.clear()
        result = session.stop()
        summary = result.summary
        self.rss_peak = max(self.rss_peak, summary.rss_peak_bytes)
        return {
            **base,
            "status": "ok",
            "lines": _records(result.lines),
            "stacks": _records(result.stacks),
            "tasks": self.done,
            "tasks_dropped": self.dropped,
            "timeline": list(self.timeline),
            "rss_before": self.rss_before,
            "rss_after": summary.rss_after_bytes,
            "rss_peak": self.rss_peak,
            "traced_peak": summary.peak_bytes,
            "tasks_peak": self.tasks_peak,
            "tracer": summary.tracer,
            "note": summary.note or self._fallback_note(summary.tracer),
        }

    def _fallback_note(self, tracer: str) -> str | None:
        if tracer != "exact" or self.spec.tracer == "exact":
            return None
        return f"the exact tracer (tracemalloc) ran: {native_reason()}"

    def _identity(self) -> dict[str, Any]:
        return {
            "worker": self.address,
            "name": str(self.worker.name),
            "pid": os.getpid(),
            "limit": self.limit,
            "session": self.spec.session_id,
        }

    # -- tasks ------------------------------------------------------------------------------
    def transition(self, key: Any, start: str, finish: str) -> None:
        """Follow a task's transition (Dask calls this on the worker's event loop)."""
        if self.session is None:
            return
        if finish == "executing":
            self._begin(key)
        elif start in _RUNNING and finish in ("memory", "error"):
            self._end(key, finish)
        elif start in _RUNNING and finish not in _RUNNING:
            self.running.pop(key, None)  # cancelled or released while running: not a finished task

    def _active_keys(self) -> set[Any]:
        state = self.worker.state
        return {ts.key for ts in state.executing} | {ts.key for ts in state.long_running}

    def _settle(self) -> None:
        """Read the tracer's peak for tasks whose thread is done (before another task resets it)."""
        tracer = self.tracer
        if tracer is None:
            return
        active = self._active_keys()
        for task in self.running.values():
            if not task.settled and task.key not in active:
                task.settled = True
                if task.exclusive:
                    task.peak = max(tracer.peak() - task.level0, 0)

    def _begin(self, key: Any) -> None:
        tracer = self.tracer
        if tracer is None:
            return
        self._settle()
        others = [t for t in self.running.values() if not t.settled and t.key != key]
        for task in others:
            task.exclusive = False
        exclusive = not others
        if exclusive:
            tracer.reset_peak()
        self.running[key] = _Task(key, time.time(), tracer.mark(), tracer.current(), exclusive, self._managed())

    def _end(self, key: Any, finish: str) -> None:
        self._settle()
        task = self.running.pop(key, None)
        if task is None:
            return
        row = self._row(task, finish, time.time(), thread=self.worker.threads.get(key))
        if len(self.done) >= _TASKS_KEPT:
            self.done.pop(0)
            self.dropped += 1
            self._sent = max(self._sent - 1, 0)
        self.done.append(row)
        peak = row["peak_bytes"]
        if peak is not None:
            self.tasks_peak = max(self.tasks_peak, peak + max(task.managed0 - self.managed_start, 0))

    def _row(self, task: _Task, state: str, now: float, *, thread: int | None) -> dict[str, Any]:
        tracer = self.tracer
        retained = allocated = None
        if tracer is not None and tracer.estimate:
            snap = tracer.snapshot(task.mark)
            stats = [s for s in snap.stats if thread is None or s.thread_id == thread]
            retained = sum(s.live_bytes for s in stats)
            allocated = sum(s.allocated_bytes for s in stats)
        elif tracer is not None and task.exclusive:
            retained = max(tracer.current() - task.level0, 0)
        peak: int | None = task.peak
        if peak is None and task.exclusive and tracer is not None:
            peak = max(tracer.peak() - task.level0, 0)
        known = [v for v in (peak, task.polled or None, retained) if v is not None]
        start, duration = task.started, now - task.started
        ts = self.worker.state.tasks.get(task.key)
        if ts is not None:
            compute = [s for s in ts.startstops if s.get("action") == "compute"]
            if compute:
                start, duration = compute[-1]["start"], compute[-1]["stop"] - compute[-1]["start"]
        rss = self._statm.rss()
        self.rss_peak = max(self.rss_peak, rss)
        return {
            "key": key_text(task.key),
            "prefix": key_prefix(task.key),
            "group": key_group(task.key),
            "worker": self.address,
            "thread_id": thread,
            "start": start,
            "duration_s": max(duration, 0.0),
            "peak_bytes": max(known) if known else None,
            "retained_bytes": retained,
            "allocated_bytes": allocated,
            "result_bytes": int(ts.nbytes) if ts is not None and ts.nbytes is not None and state == "memory" else None,
            "unmanaged_after_bytes": rss - self._managed(),
            "exclusive": task.exclusive,
            "state": state,
        }

    def _managed(self) -> int:
        return int(getattr(self.worker.state, "nbytes", 0) or 0)

    # -- readings -----------------------------------------------------------------------------
    def _tick_safely(self) -> None:
        try:
            self._tick(send=True)
        except Exception:  # a reading must never hurt the worker
            log.exception("cgmem_nb: a worker reading failed")

    def _tick(self, *, send: bool) -> None:
        tracer = self.tracer
        now = time.time()
        rss = self._statm.rss()
        self.rss_peak = max(self.rss_peak, rss)
        traced = tracer.current() - self.traced_start if tracer is not None else 0
        managed = self._managed()
        threads: dict[Any, int] = {key: ident for ident, key in dict(self.worker.active_threads).items()}
        executing = [key_text(k) for k in self.running]
        self.timeline.append((now, rss, traced, managed, ",".join(executing)))
        self._poll(threads)
        for task in self.running.values():
            task.thread = threads.get(task.key, task.thread)
        if not send:
            return
        pressure = self.tracker.update(rss) if self.tracker is not None else None
        if pressure is not None:
            self._send({"type": "pressure", "level": pressure.level.value, "rss": rss, "limit": self.limit})
        new = self.done[self._sent : self._sent + _TASKS_PER_TICK]
        self._sent += len(new)
        self._send(
            {
                "type": "tick", "wall": now, "rss": rss, "traced": traced, "managed": managed,
                "limit": self.limit, "executing": executing, "tasks": new,
            }
        )

    def _poll(self, threads: dict[Any, int]) -> None:
        """Update the most each running task's thread holds, when tasks run side by side."""
        tracer = self.tracer
        busy = [t for t in self.running.values() if not t.settled]
        if tracer is None or not tracer.estimate or len(busy) < 2:
            return
        for task in busy:
            thread = threads.get(task.key)
            if thread is None:
                continue
            held = sum(s.live_bytes for s in tracer.snapshot(task.mark).stats if s.thread_id == thread)
            task.polled = max(task.polled, held)

    def _send(self, message: dict[str, Any]) -> None:
        message.update(session=self.spec.session_id, worker=self.address)
        self.worker.log_event(TOPIC, message)


def _records(frame: Any) -> list[dict[str, Any]]:
    """A table's rows as plain dicts (missing values as None), for the trip to the kernel."""
    rows: list[dict[str, Any]] = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return rows


def native_reason() -> str | None:
    """Why the native sampler cannot run on this worker, or None when it can."""
    from ...engine.tracers import available_tracers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if "sampled" in available_tracers():
            return None
    from ...engine import sampled

    return sampled.unavailable_reason() or "the native sampler is not available"
