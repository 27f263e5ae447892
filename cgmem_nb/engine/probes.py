"""Process figures: RSS, USS, the kernel's own peak RSS and the effective memory limit.

The kernel's peak (``VmHWM`` in ``/proc/self/status``) catches a peak inside a long
C call that holds the GIL, when no Python thread (the monitor included) can run.
Linux lets a process reset it by writing ``5`` to ``/proc/self/clear_refs``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import psutil

from .protocol import PeakFolder

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


@lru_cache(maxsize=1)
def _process() -> psutil.Process:
    return psutil.Process(os.getpid())


def rss() -> int:
    """Resident set size of this process, in bytes."""
    if _process().pid != os.getpid():  # after a fork
        _process.cache_clear()
    return int(_process().memory_info().rss)


def uss() -> int | None:
    """Unique set size (memory freed if this process ended), or None where unavailable."""
    try:
        return int(_process().memory_full_info().uss)
    except (psutil.AccessDenied, AttributeError, OSError):
        return None


def _read_hwm() -> int | None:
    try:
        with open(_STATUS, "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class KernelPeak:
    """The kernel's peak RSS of this process, resettable where Linux allows it.

    Where ``VmHWM`` is missing (not Linux) the peak falls back to the highest RSS
    read through :meth:`observe`; where it cannot be reset, :attr:`resettable` is
    False and a session only trusts it when it is above the session's start RSS.
    """

    def __init__(self) -> None:
        self._fallback = 0
        self.resettable = os.access(_CLEAR_REFS, os.W_OK) and _read_hwm() is not None
        self.peaks = PeakFolder(self.read, self._reset)

    def observe(self, value: int) -> None:
        """Note an RSS reading (used where the kernel keeps no peak)."""
        if value > self._fallback:
            self._fallback = value

    def read(self) -> int:
        """Peak RSS in bytes since the last reset."""
        hwm = _read_hwm()
        return hwm if hwm is not None else self._fallback

    def _reset(self) -> None:
        self._fallback = 0
        if self.resettable:
            try:
                with open(_CLEAR_REFS, "w") as fh:
                    fh.write("5")
            except OSError:
                self.resettable = False

    def reset(self) -> None:
        """Hand the current peak to listeners, then reset it."""
        self.peaks.reset()


#: The process-wide kernel peak probe.
KERNEL_PEAK = KernelPeak()


@dataclass(frozen=True)
class MemoryLimit:
    """The memory limit in force and where it came from."""

    bytes: int
    #: ``"config"``, ``"cgroup v2"``, ``"cgroup v1"`` or ``"physical"``.
    source: str


def _cgroup_v2_limit() -> int | None:
    try:
        with open("/proc/self/cgroup") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            rel = line[3:].strip() or "/"
            path = os.path.join("/sys/fs/cgroup", rel.lstrip("/"))
            # Walk up: a parent group may hold the limit.
            while True:
                try:
                    with open(os.path.join(path, "memory.max")) as fh:
                        text = fh.read().strip()
                    if text != "max":
                        return int(text)
                except (OSError, ValueError):
                    pass
                if os.path.normpath(path) == "/sys/fs/cgroup":
                    return None
                path = os.path.dirname(path)
    return None


def _cgroup_v1_limit() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory/memory.limit_in_bytes") as fh:
            value = int(fh.read().strip())
    except (OSError, ValueError):
        return None
    # "No limit" is reported as a huge page-aligned number.
    return value if value < (1 << 60) else None


def memory_limit(configured: int | None = None) -> MemoryLimit:
    """The effective limit: the configured one, else the cgroup's, else physical memory."""
    if configured is not None:
        return MemoryLimit(int(configured), "config")
    physical = int(psutil.virtual_memory().total)
    for source, reader in (("cgroup v2", _cgroup_v2_limit), ("cgroup v1", _cgroup_v1_limit)):
        value = reader()
        if value is not None and value < physical:
            return MemoryLimit(value, source)
    return MemoryLimit(physical, "physical")
