"""``TrackedCache``: a dict-like cache whose inserts and evictions are recorded under Cache.

The seed's cache integration in Python: put values in, and the profiler's
manual records (``get_metrics().by_category["Cache"]``) follow without the user
calling anything. With ``max_bytes`` it evicts least recently used entries.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, Iterator, MutableMapping, TypeVar

from ..categories import AllocationType
from ..errors import ConfigError
from ..sizing import deep_size
from ..units import parse_size
from .profiler import MEMORY_PROFILER, MemoryProfiler

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TrackedCache(MutableMapping[K, V], Generic[K, V]):
    """A least-recently-used cache, optionally bounded in bytes, recorded under ``Cache``."""

    def __init__(
        self,
        max_bytes: int | str | None = None,
        *,
        profiler: MemoryProfiler | None = None,
        sizeof: Callable[[Any], int] = deep_size,
    ) -> None:
        self.max_bytes = parse_size(max_bytes, what="max_bytes") if max_bytes is not None else None
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ConfigError(f"max_bytes={max_bytes!r} must be more than 0 bytes, or None for no bound")
        self._profiler = profiler or MEMORY_PROFILER
        self._sizeof = sizeof
        self._data: OrderedDict[K, tuple[V, int, int]] = OrderedDict()
        self._bytes = 0
        #: Entries evicted to stay within ``max_bytes``.
        self.evictions = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the cached values (as measured on insert)."""
        return self._bytes

    def __getitem__(self, key: K) -> V:
        value, _, _ = self._data[key]
        self._data.move_to_end(key)
        return value

    def __setitem__(self, key: K, value: V) -> None:
        if key in self._data:
            self._drop(key)
        size = int(self._sizeof(value))
        rid = self._profiler.record_allocation(size, AllocationType.Cache)
        self._data[key] = (value, size, rid)
        self._bytes += size
        if self.max_bytes is not None:
            while self._bytes > self.max_bytes and len(self._data) > 1:
                oldest = next(iter(self._data))
                self._drop(oldest)
                self.evictions += 1

    def _drop(self, key: K) -> None:
        _, size, rid = self._data.pop(key)
        self._bytes -= size
        self._profiler.record_deallocation(rid)

    def __delitem__(self, key: K) -> None:
        if key not in self._data:
            raise KeyError(key)
        self._drop(key)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        for key in list(self._data):
            self._drop(key)

    def __repr__(self) -> str:
        bound = f", max_bytes={self.max_bytes}" if self.max_bytes is not None else ""
        return f"TrackedCache({len(self)} entries, {self._bytes} bytes{bound})"
