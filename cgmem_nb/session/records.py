"""Manual records: the seed's allocation-id API (``record_allocation`` / ``record_deallocation``).

Code that wants to account for its own objects records them here and gets an id
back; the profiler's metrics, the holder observations (kind ``records``) and the
exports read the live records. An object given instead of a size is measured
deeply, and its deallocation is recorded when it is garbage collected.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..categories import AllocationType
from ..errors import ConfigError
from ..sizing import deep_size

__all__ = ["ManualRecords", "RecordCounts", "TrackedAllocation"]


class TrackedAllocation(NamedTuple):
    """One live manual record."""

    allocation_id: int
    size: int
    category: str
    #: Unix time of the record.
    created: float


@dataclass(frozen=True)
class RecordCounts:
    """Totals of the manual records."""

    allocations: int
    deallocations: int
    #: Bytes alive now, and the most alive at once.
    tracked_bytes: int
    tracked_peak_bytes: int
    #: Bytes alive now by category.
    by_category: dict[str, int]


@dataclass
class _Record:
    size: int
    category: AllocationType
    created: float
    finalizer: weakref.finalize | None = None  # type: ignore[type-arg]


class ManualRecords:
    """The live manual records of one profiler, and their totals. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[int, _Record] = {}
        self._ids = itertools.count(1)
        self._allocations = 0
        self._deallocations = 0
        self._tracked = 0
        self._tracked_peak = 0

    def record(self, obj_or_size: Any, category: AllocationType | str = AllocationType.Unknown) -> int:
        """Record an allocation and return its id (see ``MemoryProfiler.record_allocation``)."""
        cat = AllocationType.parse(category)
        if isinstance(obj_or_size, bool):
            raise ConfigError("record_allocation() got a bool; give a size in bytes or the object itself")
        if isinstance(obj_or_size, int):
            if obj_or_size < 0:
                raise ConfigError(f"record_allocation() size {obj_or_size!r} must be 0 or more bytes")
            size, obj = obj_or_size, None
        else:
            size, obj = deep_size(obj_or_size), obj_or_size
        record = _Record(size, cat, time.time())
        with self._lock:
            rid = next(self._ids)
            self._records[rid] = record
            self._allocations += 1
            self._tracked += size
            self._tracked_peak = max(self._tracked_peak, self._tracked)
        if obj is not None:
            try:
                record.finalizer = weakref.finalize(obj, self.release, rid)
            except TypeError:
                pass  # not weak-referenceable: the caller records the deallocation
        return rid

    def release(self, allocation_id: int) -> bool:
        """Record that ``allocation_id`` was freed; False if it was not live."""
        with self._lock:
            record = self._records.pop(allocation_id, None)
            if record is None:
                return False
            self._deallocations += 1
            self._tracked -= record.size
        if record.finalizer is not None:
            record.finalizer.detach()
        return True

    def live(self) -> list[TrackedAllocation]:
        """Live records, oldest first."""
        with self._lock:
            return [TrackedAllocation(rid, r.size, r.category.value, r.created) for rid, r in self._records.items()]

    def by_category(self) -> dict[str, tuple[int, int]]:
        """Live records by category: ``{category: (bytes, count)}``."""
        out: dict[str, tuple[int, int]] = {}
        for _rid, size, category, _created in self.live():
            total, count = out.get(category, (0, 0))
            out[category] = (total + size, count + 1)
        return out

    def counts(self) -> RecordCounts:
        """The totals now."""
        with self._lock:
            by_cat: dict[str, int] = {}
            for r in self._records.values():
                by_cat[r.category.value] = by_cat.get(r.category.value, 0) + r.size
            return RecordCounts(self._allocations, self._deallocations, self._tracked, self._tracked_peak, by_cat)

    def clear(self) -> None:
        """Forget every record and total."""
        with self._lock:
            for r in self._records.values():
                if r.finalizer is not None:
                    r.finalizer.detach()
            self._records.clear()
            self._allocations = self._deallocations = self._tracked = self._tracked_peak = 0
