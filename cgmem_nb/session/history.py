"""Cell history: ``%memwatch on`` records every cell through IPython's events.

Each cell gets one :class:`CellRecord`: RSS before and after, the peak RSS
during the cell (the kernel's own peak, ``VmHWM``, reset when the cell starts,
so a peak inside a long C call is not missed), its duration and, only with
``stacks=True``, the traced heap's peak and what it retained (tracemalloc runs
then, with its cost). Without stacks the traced columns stay missing rather
than guessed.

After each cell an :class:`~cgmem_nb.session.holders.Observation` of the
holders is taken for the leak detector (cheap: measurements are cached).
Observations *while* a cell runs (``interval``) are taken on a thread of their
own, never on the monitor thread, and at most :data:`OBSERVER_DUTY` of the time:
a namespace of a few GB never starves the live views of their samples.

A cell is *heavy* when its peak rose at least :func:`heavy_threshold` above its
starting RSS, or when it retained that much: ``min(100 MB, 10% of the memory
limit)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pandas as pd

from .. import schema
from ..schema.readable import readable
from ..engine import probes
from ..engine.monitor import MONITOR, Tick
from ..engine.subscription import Subscription
from ..errors import ConfigError
from .holders import log_observation

if TYPE_CHECKING:
    from .profiler import MemoryProfiler
    from .session import Session

#: The fixed part of the heavy-cell rule, in bytes.
HEAVY_BYTES = 100 * 1000**2
#: The share of the memory limit in the heavy-cell rule.
HEAVY_FRACTION = 0.10
_KEPT = 5000
#: Seconds accepted between observations while a cell runs (besides 0, off).
MIN_WATCH_INTERVAL = 0.05
MAX_WATCH_INTERVAL = 86_400.0
#: Largest share of wall time the in-cell observations may take: after one that cost
#: ``c`` seconds, the next waits at least ``c / OBSERVER_DUTY``.
OBSERVER_DUTY = 0.1
log = logging.getLogger(__name__)


def heavy_threshold(limit: int) -> int:
    """Bytes of growth (peak or retained) that make a cell heavy: ``min(100 MB, 10% of limit)``."""
    return int(min(HEAVY_BYTES, HEAVY_FRACTION * limit))


def first_line(code: str, width: int = 120) -> str:
    """The first non-blank line of ``code``, stripped and cut to ``width`` characters."""
    for line in code.splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= width else text[: width - 1] + "…"
    return ""


@dataclass(frozen=True)
class CellRecord:
    """What one executed cell did to memory."""

    cell: int | None
    code: str
    started_at: float
    duration_s: float
    rss_before_bytes: int
    rss_after_bytes: int
    rss_peak_bytes: int
    #: tracemalloc's peak above the cell's start; None unless watching with stacks.
    traced_peak_bytes: int | None
    #: tracemalloc's bytes alive at the end from the cell; None unless watching with stacks.
    traced_retained_bytes: int | None
    heavy: bool
    error: str | None = None

    @property
    def retained_bytes(self) -> int:
        """RSS after minus RSS before."""
        return self.rss_after_bytes - self.rss_before_bytes


class _IntervalObserver:
    """Takes holder observations on its own thread when asked; paced to :data:`OBSERVER_DUTY`."""

    def __init__(self, observe: Callable[[], object]) -> None:
        self._observe = observe
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = False
        self._not_before = 0.0
        self.thread = threading.Thread(target=self._run, name="cgmem-observer", daemon=True)
        self.thread.start()

    def request(self, now: float) -> bool:
        """Ask for one observation (ignored while one runs or too soon after a costly one)."""
        if self._busy or now < self._not_before:
            return False
        self._wake.set()
        return True

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.thread is not threading.current_thread():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stop.is_set():
                return
            self._busy = True
            began = time.perf_counter()
            try:
                self._observe()
            except Exception:  # user code may change a container under the walk: skip this one
                log.debug("cgmem_nb: interval observation skipped", exc_info=True)
            finally:
                ended = time.perf_counter()
                self._not_before = ended + (ended - began) * (1 - OBSERVER_DUTY) / OBSERVER_DUTY
                self._busy = False


class CellWatcher:
    """Records every cell of one IPython shell while on. Use the process-wide :data:`WATCHER`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._shell: Any = None
        self._profiler: MemoryProfiler | None = None
        self.stacks = False
        self.observe_holders = True
        self._records: deque[CellRecord] = deque(maxlen=_KEPT)
        self._pending: dict[str, Any] | None = None
        self._peak_seen = 0
        self._sub: Subscription[Tick] | None = None
        self._observer: _IntervalObserver | None = None
        self._last_interval_obs = 0.0
        #: Seconds between observations taken while a cell runs (0: only after cells).
        self.interval = 0.0
        #: Seconds spent in the watcher's own handlers (its overhead).
        self.overhead_s = 0.0

    @property
    def on(self) -> bool:
        """True while cells are being recorded."""
        return self._shell is not None

    def start(
        self,
        shell: Any,
        profiler: MemoryProfiler,
        *,
        stacks: bool = False,
        observe_holders: bool = True,
        interval: float = 0.0,
    ) -> None:
        """Record every cell of ``shell`` for ``profiler`` from the next one on (restarts with new options).

        ``profiler`` gives the limit, the configuration (history retention), the manual
        records of the observations and, with ``stacks``, the sessions.

        With ``interval`` > 0 (seconds) the holders are also observed that often
        *while a cell runs*, from the monitor thread, so a loop that leaks inside one
        long cell is seen growing (``ProfilerConfig.leak_detection_interval``).
        """
        if not (isinstance(interval, (int, float)) and (interval == 0 or MIN_WATCH_INTERVAL <= interval <= MAX_WATCH_INTERVAL)):
            raise ConfigError(
                f"interval={interval!r} is not accepted: give 0 (off) or seconds from {MIN_WATCH_INTERVAL} to {MAX_WATCH_INTERVAL:.0f}"
            )
        if self._shell is not None:
            self.stop()
        self.stacks = bool(stacks)
        self.observe_holders = observe_holders
        self.interval = float(interval)
        shell.events.register("pre_run_cell", self._pre)
        shell.events.register("post_run_cell", self._post)
        self._shell = shell
        self._profiler = profiler
        if self.interval > 0 and observe_holders:
            self._observer = _IntervalObserver(self._observe_now)
            self._sub = MONITOR.subscribe(self._on_tick, self.interval)

    def stop(self) -> None:
        """Stop recording (a cell in progress is dropped, its session stopped)."""
        shell, self._shell = self._shell, None
        sub, self._sub = self._sub, None
        if sub is not None:
            sub.close()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.close()
        if shell is not None:
            for event, handler in (("pre_run_cell", self._pre), ("post_run_cell", self._post)):
                try:
                    shell.events.unregister(event, handler)
                except ValueError:
                    pass
        self._drop_pending()

    def _drop_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        probes.KERNEL_PEAK.peaks.remove(self._on_peak)
        session = pending.get("session")
        if session is not None and session.running:
            session.stop()

    def _on_peak(self, value: int) -> None:
        if value > self._peak_seen:
            self._peak_seen = value

    def _on_tick(self, tick: Tick) -> None:
        # The monitor ticks as often as its most eager subscriber asks: keep our own pace,
        # and observe only while a cell runs (after cells, _post observes). The walk itself
        # runs on the observer's thread: the monitor only asks for it.
        observer = self._observer
        if self._pending is None or observer is None or tick.perf - self._last_interval_obs < self.interval:
            return
        if observer.request(tick.perf):
            self._last_interval_obs = tick.perf

    def _observe_now(self) -> None:
        profiler = self._profiler
        if profiler is not None and self._pending is not None:
            log_observation(profiler)

    # -- IPython events --------------------------------------------------------------------
    def _pre(self, info: Any = None) -> None:
        began = time.perf_counter()
        try:
            self._drop_pending()
            code = getattr(info, "raw_cell", None) or ""
            pending: dict[str, Any] = {"code": code, "wall": time.time()}
            pending["rss_before"] = probes.rss()
            self._peak_seen = pending["rss_before"]
            probes.KERNEL_PEAK.reset()
            probes.KERNEL_PEAK.peaks.add(self._on_peak)
            if self.stacks and self._profiler is not None:
                # Only the figures are needed: the holders are observed after the cell anyway.
                session: Session = self._profiler.session("memwatch", analyze=False)
                session.start()
                pending["session"] = session
            self._pending = pending
        except Exception:  # never break the user's cell
            log.exception("cgmem_nb: %memwatch could not start recording a cell")
            self._pending = None
        finally:
            self.overhead_s += time.perf_counter() - began
        pending_t0 = time.perf_counter()
        if self._pending is not None:
            self._pending["t0"] = pending_t0

    def _post(self, result: Any = None) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return  # the cell that turned watching on
        t_end = time.perf_counter()
        began = t_end
        try:
            duration = t_end - pending["t0"]
            rss_after = probes.rss()
            probes.KERNEL_PEAK.peaks.fold()
            probes.KERNEL_PEAK.peaks.remove(self._on_peak)
            peak = max(rss_after, pending["rss_before"])
            if probes.KERNEL_PEAK.resettable:
                peak = max(peak, self._peak_seen)
            traced_peak = traced_retained = None
            session = pending.get("session")
            if session is not None and session.running:
                res = session.stop().summary
                traced_peak, traced_retained = res.peak_bytes, res.retained_bytes
                peak = max(peak, res.rss_peak_bytes)
            cell = getattr(result, "execution_count", None)
            error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
            profiler = self._profiler
            assert profiler is not None  # set while watching
            threshold = heavy_threshold(profiler.memory_limit().bytes)
            record = CellRecord(
                cell=cell if isinstance(cell, int) else None,
                code=first_line(pending["code"]),
                started_at=pending["wall"],
                duration_s=duration,
                rss_before_bytes=pending["rss_before"],
                rss_after_bytes=rss_after,
                rss_peak_bytes=peak,
                traced_peak_bytes=traced_peak,
                traced_retained_bytes=traced_retained,
                heavy=(peak - pending["rss_before"]) >= threshold or (rss_after - pending["rss_before"]) >= threshold,
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
            with self._lock:
                self._records.append(record)
            if self.observe_holders:
                log_observation(profiler, cell=record.cell)
        except Exception:  # never break the user's kernel
            log.exception("cgmem_nb: %memwatch could not record a cell")
        finally:
            self.overhead_s += time.perf_counter() - began

    # -- reading -------------------------------------------------------------------------
    @property
    def records(self) -> list[CellRecord]:
        """Recorded cells, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget recorded cells."""
        with self._lock:
            self._records.clear()

    def frame(self) -> pd.DataFrame:
        """The history as a DataFrame (schema ``history``), displayed readably (sizes, times)."""
        return readable(schema.make_frame(
            "history",
            (
                {
                    "cell": r.cell,
                    "code": r.code,
                    "started_at": r.started_at,
                    "duration_s": r.duration_s,
                    "rss_before_bytes": r.rss_before_bytes,
                    "rss_after_bytes": r.rss_after_bytes,
                    "rss_peak_bytes": r.rss_peak_bytes,
                    "traced_peak_bytes": r.traced_peak_bytes,
                    "retained_bytes": r.retained_bytes,
                    "traced_retained_bytes": r.traced_retained_bytes,
                    "heavy": r.heavy,
                    "error": r.error,
                }
                for r in self.records
            ),
        ))


#: The process-wide cell watcher.
WATCHER = CellWatcher()


def history() -> pd.DataFrame:
    """One row per cell recorded since ``%memwatch on`` (schema ``history``)."""
    return WATCHER.frame()
