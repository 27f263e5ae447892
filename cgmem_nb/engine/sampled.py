"""The sampled tracer: a native byte-sampling hook on the PyMem allocators and numpy.

The C extension :mod:`cgmem_nb.engine._sampler` records one allocation per
*interval* bytes on average. Intervals between sample points are exponential, so
every byte has the same chance of being sampled and an allocation of ``size``
bytes is recorded with probability ``1 - exp(-size / interval)``; it then carries
the weight ``size / (1 - exp(-size / interval))``, which makes every sum of
weights an unbiased estimate of the bytes it stands for. Allocations much larger
than the interval are always recorded with a weight equal to their size.

Each sample carries its size, weight, thread id (``threading.get_ident()``),
monotonic timestamp, sequence number, the thread's category tag
(:func:`set_tag`), its Python stack and its domain (which allocator family).

Native allocations
------------------
On Linux the tracer also samples what Python's allocators never see (the C heap,
anonymous mmaps, the allocators inside Polars, Arrow and DuckDB) by patching the
relocation slots of every loaded library while it runs (``docs/native-memory.md``).
A native allocation made on a thread that holds no GIL has no Python stack of its
own: it is charged to the statement the session runs, announced by the cell runner
before each statement and by every extension call that releases the GIL from the
session's thread (:meth:`SampledTracer.announce`).

Which sampler can run here, the interval a sampling rate means and the threads'
category tags are in :mod:`cgmem_nb.engine.sampling`; this module re-exports them.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ..config import check_depth
from ..errors import TracerError
from . import sampling
from .numpy_watch import NumpyImportWatcher, numpy_array_api
from .protocol import DOMAINS, Frame, PeakFolder, StackStat, TraceSnapshot
from .sampling import (
    DEFAULT_INTERVAL_BYTES,
    MAX_INTERVAL_BYTES,
    MIN_INTERVAL_BYTES,
    fallback_message,
    get_tag,
    interval_for_rate,
    parse_interval,
    set_tag,
    unavailable_reason,
)

__all__ = [
    "DEFAULT_INTERVAL_BYTES",
    "MIN_INTERVAL_BYTES",
    "MAX_INTERVAL_BYTES",
    "SampledTracer",
    "get_tracer",
    "interval_for_rate",
    "parse_interval",
    "set_tag",
    "get_tag",
    "unavailable_reason",
    "fallback_message",
]

#: The extension's domain names -> the names tables show (``StackStat.domain``).
_DOMAIN_NAMES = {"pymem": "python", "pyobj": "python", "numpy": "numpy", "malloc": "c heap", "mmap": "mmap", "pool": "library pool"}
assert set(_DOMAIN_NAMES.values()) == set(DOMAINS)
_warned = False


@dataclass(frozen=True, slots=True)
class _SampledMark:
    """A point in the sample sequence: samples with ``seq >= seq`` came after it."""

    seq: int


class SampledTracer:
    """The sampled tracer: process-wide, reference counted, estimates (``estimate = True``).

    Figures are sums of sample weights: unbiased estimates whose relative error
    shrinks as the bytes they cover grow past the interval.
    """

    name = "sampled"
    estimate = True
    #: The tracer keeps the composition of its high-water mark itself (:meth:`peak_snapshot`).
    keeps_peak = True

    def __init__(self, ext: Any, interval: int = DEFAULT_INTERVAL_BYTES) -> None:
        self._ext = ext
        self._lock = threading.RLock()
        self._users = 0
        self._depth = 0
        self._interval = parse_interval(interval)
        self._numpy_hooked = False
        self._native_wanted = False  # sessions turn it on (ProfilerConfig.native_memory)
        self._native_error: str | None = None
        self._numpy_watcher = NumpyImportWatcher(self._numpy_imported)
        self._stack_cache: dict[int, tuple[Frame, ...]] = {}
        self.peaks = PeakFolder(self.peak, self._ext.reset_peak)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork_child)

    # -- configuration -------------------------------------------------------------

    @property
    def interval(self) -> int:
        """Mean sampling interval in bytes."""
        return self._interval

    def set_interval(self, interval: int | float | str) -> None:
        """Change the mean sampling interval; takes effect at once if running."""
        value = parse_interval(interval)
        with self._lock:
            self._interval = value
            if self._users:
                self._ext.set_interval(float(value))

    @property
    def native(self) -> bool:
        """True when native allocations are sampled too (see :meth:`set_native`)."""
        return self._native_wanted

    @staticmethod
    def native_supported() -> bool:
        """True where native allocations can be followed (Linux: ELF relocation patching)."""
        return sys.platform.startswith("linux")

    def set_native(self, on: bool) -> bool:
        """Sample native allocations (C heap, mmap, library pools) from the next start.

        Takes effect when the tracer is not running; returns False (and changes
        nothing) while it runs with the other setting.
        """
        with self._lock:
            if self._users and on != self._native_wanted:
                return False
            self._native_wanted = bool(on)
            return True

    def native_error(self) -> str | None:
        """Why the native hooks could not start in this process, or None."""
        return self._native_error

    def native_running(self) -> bool:
        """True while native allocations are being sampled."""
        return bool(self._ext.hooks()["native"])

    def announce(self, frame: FrameType | None) -> None:
        """Charge later samples that have no Python stack of their own (worker threads,
        the session's thread without the GIL) to ``frame``'s current line and its
        callers; None forgets the statement. The calling thread becomes the one whose
        GIL releases refresh the statement."""
        if self._users:
            self._ext.announce(frame)

    # -- Tracer protocol -------------------------------------------------------------

    def start(self, depth: int) -> None:
        """Start sampling (reference counted); the first start chooses the depth.

        Every start also reinstalls the hooks if someone dropped them (for example
        ``tracemalloc.stop()`` after tracemalloc was started on top of us). numpy's
        data buffers are sampled once numpy is imported (now or later); the tracer
        never imports numpy itself.
        """
        check_depth(depth, what="depth", error=TracerError)
        with self._lock:
            if self._users == 0:
                self._stack_cache.clear()
                self._depth = depth
            self._ext.start(float(self._interval), self._depth)
            if not self._numpy_hooked:
                self._hook_numpy()
            if self._users == 0 and self._native_wanted and self._native_error is None:
                self._start_native()
            self._users += 1

    def stop(self) -> None:
        """Undo one :meth:`start`; the last one unhooks and drops every sample."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self.peaks.fold()
                self._numpy_watcher.uninstall()
                if self._numpy_hooked:
                    self._ext.unhook_numpy()
                    self._numpy_hooked = False
                self._ext.native_stop(False)
                self._ext.stop()
                self._stack_cache.clear()
                self._depth = 0

    def is_running(self) -> bool:
        """True while at least one start() is not yet undone."""
        return self._users > 0

    def depth(self) -> int:
        """Frames kept per stack (0 when not running)."""
        return self._depth

    def current(self) -> int:
        """Estimated live bytes of sampled allocations, process-wide."""
        return int(self._ext.live()[0])

    def peak(self) -> int:
        """Estimated most live bytes since the last reset."""
        return int(self._ext.live()[1])

    def reset_peak(self) -> None:
        """Fold the peak into listeners, then restart peak tracking from now."""
        self.peaks.reset()

    def mark(self) -> object:
        """A token for "now": samples taken later belong to snapshots since it."""
        return _SampledMark(int(self._ext.next_seq()))

    def snapshot(self, since: object) -> TraceSnapshot:
        """Samples taken after ``since``, grouped by (frames, thread id, tag).

        ``live_*`` sum the weights of samples still alive; ``allocated_*`` those of
        every sample since the mark, freed ones included. Freed samples are kept up
        to a cap (``stats()['freed_cap']``); beyond it the oldest are evicted and
        ``allocated_*`` of older marks become lower bounds.
        """
        return self._grouped("snapshot", since, False)

    def peak_snapshot(self, since: object) -> TraceSnapshot:
        """What was live at the high-water mark since the last :meth:`reset_peak`, of the
        samples taken after ``since``, grouped like :meth:`snapshot` (every stat is live).

        The native sampler keeps it at no cost per sample (``csrc/core.c``): a new high
        records which sample made it, and samples live then outlive their free until the
        next high, so it is exact for the samples even for a peak inside one C call.
        """
        return self._grouped("peak_snapshot", since, True)

    # -- extras ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Internal counters: samples kept, stacks, the extension's own memory, hooks."""
        info: dict[str, Any] = dict(self._ext.stats())
        info["hooks"] = self._ext.hooks()
        info["native"] = dict(self._ext.native_counters())
        info["native_pools"] = [
            {"path": path, "kind": kind, "state": state} for path, kind, state in self._ext.native_pools()
        ]
        info["native_error"] = self._native_error
        return info

    def memory_bytes(self) -> int:
        """Bytes the extension holds for samples, stacks and its pointer table."""
        return int(self._ext.stats()["memory_bytes"])

    def seed(self, seed: int) -> None:
        """Seed the sampling random generator (for reproducible tests)."""
        self._ext.seed(seed)

    # -- internals -----------------------------------------------------------------------

    def _grouped(self, what: str, since: object, at_peak: bool) -> TraceSnapshot:
        """Samples since the mark (or those live at the peak), summed per stack in C."""
        if not isinstance(since, _SampledMark):
            raise TracerError(f"{what}(since={since!r}) needs a mark made by this tracer's mark()")
        began = time.perf_counter()
        quiet = self._ext.quiet(True)
        try:
            stats, total = self._group(self._ext.groups(since.seq, at_peak))
        finally:
            self._ext.quiet(quiet)
        now = time.perf_counter()
        return TraceSnapshot(tuple(stats), total, True, now, now - began)

    def _frames(self, stack_id: int | None) -> tuple[Frame, ...]:
        if stack_id is None:
            return ()
        frames = self._stack_cache.get(stack_id)
        if frames is None:
            frames = tuple(self._ext.stack(stack_id))
            self._stack_cache[stack_id] = frames
        return frames

    def _group(
        self, groups: list[tuple[int | None, int, str | None, str, str | None, float, float, float, float]]
    ) -> tuple[list[StackStat], int]:
        stats: list[StackStat] = []
        total = 0
        names = _DOMAIN_NAMES
        for stack_id, tid, tag, raw_domain, via, lb, lc, ab, ac in groups:
            domain = names[raw_domain]
            live_bytes = int(round(lb))
            stats.append(
                StackStat(
                    self._frames(stack_id), live_bytes, int(round(lc)), int(round(ab)), int(round(ac)), tid, tag, domain, via
                )
            )
            total += live_bytes
        stats.sort(key=lambda s: (-s.live_bytes, -s.allocated_bytes))
        return stats, total

    def _start_native(self) -> None:
        try:
            self._ext.native_start()
        except RuntimeError as exc:  # never let a library we cannot patch stop the profiler
            self._native_error = str(exc)
            warnings.warn(
                f"cgmem_nb: native allocations (C heap, mmap, library pools) will not be sampled ({exc})",
                RuntimeWarning,
                stacklevel=4,
            )

    def _numpy_imported(self) -> None:
        with self._lock:
            if self._users and not self._numpy_hooked:
                self._hook_numpy()

    def _hook_numpy(self) -> None:
        api = numpy_array_api()
        if api is None:
            if "numpy" not in sys.modules:
                self._numpy_watcher.install()
            return
        try:
            # An empty context sees the default handler, which every thread and
            # every asyncio task uses unless it set its own.
            contextvars.Context().run(self._ext.hook_numpy, api)
            self._numpy_hooked = True
        except Exception as exc:  # never let numpy trouble stop the profiler
            warnings.warn(f"cgmem_nb: numpy data buffers will not be sampled ({exc})", RuntimeWarning, stacklevel=3)

    def _after_fork_child(self) -> None:
        # The child inherits a copy of the parent's samples; none of them is its own.
        self._users = 0
        self._depth = 0
        self._numpy_hooked = False
        self._numpy_watcher.uninstall()
        self._stack_cache.clear()
        self._lock = threading.RLock()
        self._ext.unhook_numpy()
        self._ext.after_fork_child()


_TRACER: SampledTracer | None = None


def get_tracer() -> SampledTracer | None:
    """The process-wide sampled tracer, or None (with one warning) when it cannot run here."""
    global _TRACER, _warned
    ext = sampling.extension()
    if ext is None:
        if not _warned:
            _warned = True
            warnings.warn(fallback_message(unavailable_reason() or "the sampled tracer is unavailable"), RuntimeWarning, stacklevel=2)
        return None
    if _TRACER is None:
        _TRACER = SampledTracer(ext)
    return _TRACER
