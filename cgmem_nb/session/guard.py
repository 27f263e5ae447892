"""The memory guard: interrupt a running cell before the OOM killer takes the kernel.

A guarded session (``MEMORY_PROFILER.session(guard=True)``, ``%%memprofile --guard``,
or ``ProfilerConfig(guard=True)``) arms a :class:`MemoryGuard`. It listens to the
monitor thread; when the process's RSS reaches ``guard_fraction x limit`` it

1. takes a snapshot through the session's recording (so the result holds the
   lines that hold the most memory at that moment) and notes the top lines,
2. raises ``KeyboardInterrupt`` in the thread that runs the cell.

The cell ends as if the user had pressed *Interrupt*: the session stores its
result (``summary.guard_triggered`` is True, ``summary.guard`` names the cell
and the top lines), the exception propagates, and the kernel and every variable
stay.

How the interrupt is delivered: when the cell runs on the main thread and SIGINT's
handler is Python's ``default_int_handler`` (what ipykernel installs while it runs a
cell, and what a plain ``python`` process has), the guard sends SIGINT to the main
thread with ``signal.pthread_kill``. That is exactly the kernel's *Interrupt* button:
it also wakes a ``time.sleep`` or a blocking read. Otherwise (another handler, or a
cell on another thread) it sets an asynchronous ``KeyboardInterrupt`` on the cell's
thread with ``PyThreadState_SetAsyncExc``, which never touches signal handlers and
never kills the process.

What it cannot do: a single C call that holds the GIL (``sum(range(10**10))``, a
regex on a huge string, some C extensions) stops every thread, the monitor too.
No reading is taken and no interrupt is delivered until the call returns; if that
call alone exceeds the limit, the OOM killer is faster. The guard also sees memory
only every monitor interval (50 ms while guarded): a cell that allocates faster than
``(1 - guard_fraction) x limit`` per interval can overshoot before it is stopped.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import signal
import threading
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..engine.monitor import MONITOR, Tick
from ..engine.subscription import Subscription
from ..schema import GuardLine, GuardReport
from . import interrupts, notebook
from ..units import format_bytes

if TYPE_CHECKING:
    from .recording import Recording

log = logging.getLogger(__name__)

#: Seconds between readings while a guard is armed.
GUARD_INTERVAL = 0.05
#: Lines named in ``summary.guard.top_lines``.
TOP_LINES = 5
# Thread id -> the guard whose interrupt that thread is handling. Nested guarded
# sessions share one interrupt instead of stacking a second one into the unwinding.
_INTERRUPTING: dict[int, "MemoryGuard"] = {}
_INTERRUPT_LOCK = threading.Lock()


def _async_raise(thread_id: int, exc: type[BaseException]) -> bool:
    """Set an asynchronous exception on ``thread_id`` (never clear one: see
    :func:`_flush_async_exception`)."""
    ret = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))
    return bool(ret == 1)


def _flush_async_exception() -> None:
    """Let a still-pending asynchronous KeyboardInterrupt land here, and drop it.

    Clearing it with ``PyThreadState_SetAsyncExc(id, NULL)`` instead would leave the
    interpreter's eval-breaker flag set for good on CPython 3.11, and every thread
    would then stop at every jump to look for an exception that is not there.
    """
    try:
        for _ in range(16):  # each backward jump checks for pending exceptions
            pass
    except KeyboardInterrupt:
        pass


class MemoryGuard:
    """Watches RSS for one session and interrupts its thread at ``threshold`` bytes."""

    def __init__(self, recording: Recording, *, fraction: float, limit: int, interval: float = GUARD_INTERVAL) -> None:
        self.recording = recording
        self.fraction = fraction
        self.limit = limit
        #: RSS in bytes at which the guard fires.
        self.threshold = int(fraction * limit)
        self.interval = interval
        #: Thread running the guarded code (the one that armed the guard).
        self.thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self._sub: Subscription[Tick] | None = None
        #: What the guard saw when it fired (None until then).
        self.report: GuardReport | None = None
        #: How the interrupt was delivered: ``"signal"``, ``"async-exception"``, or
        #: ``"shared"`` when another guard had just interrupted the same thread.
        self.method: str | None = None

    @property
    def fired(self) -> bool:
        """True once the guard interrupted the session."""
        return self.report is not None

    def arm(self) -> "MemoryGuard":
        """Start watching (call on the thread that runs the guarded code)."""
        self.thread_id = threading.get_ident()
        with self._lock:
            self._armed = True
        self._sub = MONITOR.subscribe(self._on_tick, self.interval)
        return self

    def disarm_catching(self) -> KeyboardInterrupt | None:
        """:meth:`disarm`, even if this guard's interrupt lands during it; returns that
        interrupt (to re-raise once the session is safely stopped) or None."""
        caught: KeyboardInterrupt | None = None
        while True:
            try:
                self.disarm()
                return caught
            except KeyboardInterrupt as exc:
                caught = exc

    def disarm(self) -> None:
        """Stop watching. Once this returns the guard will not interrupt anything."""
        with self._lock:
            self._armed = False
            pending = self.method == "async-exception"
        with _INTERRUPT_LOCK:
            if _INTERRUPTING.get(self.thread_id) is self:
                del _INTERRUPTING[self.thread_id]
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        if pending and threading.get_ident() == self.thread_id:
            _flush_async_exception()

    def _on_tick(self, tick: Tick) -> None:
        if tick.rss_bytes < self.threshold or not self._armed or self.report is not None:
            return
        with self._lock:
            if not self._armed or self.report is not None:
                return
            report = self._describe(tick)
            self._interrupt()
            self.report = dataclasses.replace(report, method=self.method)
        log.warning(
            "cgmem_nb guard: the kernel's RSS %s reached %.0f%% of the %s limit; interrupting %s",
            format_bytes(tick.rss_bytes), 100 * self.fraction, format_bytes(self.limit), report.cell_label,
        )

    def _describe(self, tick: Tick) -> GuardReport:
        """Snapshot through the recording and name the lines holding the most memory."""
        rec = self.recording
        top: list[GuardLine] = []
        try:
            snap = rec.snapshot_now()
        except Exception:  # the tracer stopping under us: report without lines
            log.exception("cgmem_nb guard could not take a snapshot")
            snap = None
        if snap is not None:
            held: dict[tuple[str, int], int] = defaultdict(int)
            for stat in snap.stats:
                where = notebook.attribute(stat.frames)
                if where is not None:
                    held[where] += stat.live_bytes
            for (filename, lineno), size in sorted(held.items(), key=lambda kv: kv[1], reverse=True)[:TOP_LINES]:
                top.append(
                    GuardLine(
                        location=notebook.location(filename, lineno),
                        cell=notebook.cell_number(filename),
                        lineno=lineno,
                        code=notebook.source_line(filename, lineno),
                        bytes=int(size),
                    )
                )
        return GuardReport(
            time=tick.wall,
            rss_bytes=tick.rss_bytes,
            threshold_bytes=self.threshold,
            limit_bytes=self.limit,
            fraction=self.fraction,
            cell=rec.cell,
            cell_label=rec.label,
            top_lines=tuple(top),
            seconds_into_session=round(time.perf_counter() - rec.t0, 6),
        )

    def _interrupt(self) -> None:
        with _INTERRUPT_LOCK:
            if _INTERRUPTING.get(self.thread_id, self) is not self:
                self.method = "shared"  # another guarded session is interrupting this thread
                return
            _INTERRUPTING[self.thread_id] = self
        main = threading.main_thread().ident
        if self.thread_id == main and interrupts.forwards_to_default():
            signal.pthread_kill(self.thread_id, signal.SIGINT)
            self.method = "signal"
        else:
            _async_raise(self.thread_id, KeyboardInterrupt)
            self.method = "async-exception"


def guard_summary(guard: MemoryGuard) -> dict[str, Any]:
    """Summary figures a guarded session adds to its result (``Summary`` field: value)."""
    return {
        "guard_armed": True,
        "guard_threshold_bytes": guard.threshold,
        "guard_triggered": guard.fired,
        "guard": guard.report,
    }
