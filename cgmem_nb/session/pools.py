"""Memory pools inside libraries: what Arrow's default pool holds resident against what its data uses.

Arrow allocates its buffers from a pool (``pyarrow.default_memory_pool()``): mimalloc by
default, or jemalloc, or the C library's ``malloc``. A pool keeps the pages of freed
buffers for its next allocations instead of returning them: after a 200 MB Arrow
result is dropped, mimalloc keeps all 200 MB resident (measured: RSS does not move)
until ``release_unused()`` gives them back. The pool's own counter
(``bytes_allocated()``) says only what its data uses.

:func:`arrow_pool` reads both sides: the pool's counter, and the resident pages of the
mapping that holds the pool's blocks (found with a 64-byte probe allocation from the
pool; ``mincore`` counts its resident pages). The difference is memory the pool keeps
and no Arrow data uses. It is a lower bound: a pool that spread over several
reservations (mimalloc reserves 1 GiB at a time) is read in the one that takes its new
blocks. Nothing is read unless pyarrow is already imported; nothing is released here.
"""

from __future__ import annotations

import ctypes
import mmap
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["PoolReading", "arrow_pool"]


@dataclass(frozen=True)
class PoolReading:
    """One reading of a library's memory pool."""

    #: The library (``"pyarrow"``).
    library: str
    #: The pool's allocator: ``"mimalloc"``, ``"jemalloc"`` or ``"system"``.
    backend: str
    #: Bytes the library's data uses, by the pool's own counter.
    allocated_bytes: int
    #: The most the pool's data used at once (``max_memory()``).
    max_bytes: int
    #: Resident bytes of the mapping that holds the pool's blocks (0 when not found, and for
    #: the ``system`` pool, whose blocks share malloc's heap).
    resident_bytes: int

    @property
    def unused_bytes(self) -> int:
        """Resident bytes the pool keeps and no data of it uses (a lower bound; 0 when unknown)."""
        return max(self.resident_bytes - self.allocated_bytes, 0)


@lru_cache(maxsize=1)
def _mincore() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.mincore
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_int
    func.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    return func


def _mapping_of(address: int) -> tuple[int, int] | None:
    """The ``[start, end)`` of the mapping of this process that contains ``address``."""
    try:
        with open("/proc/self/maps", "rb") as fh:
            for line in fh:
                lo, _, rest = line.partition(b"-")
                hi = rest.split(b" ", 1)[0]
                start, end = int(lo, 16), int(hi, 16)
                if start <= address < end:
                    return start, end
    except (OSError, ValueError):
        return None
    return None


# mincore's page vector: one buffer, grown as needed (a ctypes array type per call would be garbage).
_VECTOR = bytearray()
_VECTOR_LOCK = threading.Lock()
# mincore sets the lowest bit of a page's byte when the page is resident.
_RESIDENT = bytes(i & 1 for i in range(256))


def _resident(start: int, end: int) -> int | None:
    """Resident bytes of ``[start, end)`` (``mincore``), or None where it cannot be read."""
    global _VECTOR
    mincore = _mincore()
    if mincore is None:
        return None
    page = mmap.PAGESIZE
    pages = (end - start) // page
    with _VECTOR_LOCK:
        if len(_VECTOR) < pages:
            _VECTOR = bytearray(max(pages, 2 * len(_VECTOR)))
        anchor = ctypes.c_char.from_buffer(_VECTOR)
        try:
            failed = mincore(start, pages * page, ctypes.addressof(anchor)) != 0
        finally:
            del anchor  # release the buffer export so the bytearray can grow later
        if failed:
            return None
        return _VECTOR[:pages].translate(_RESIDENT).count(1) * page


def arrow_pool() -> PoolReading | None:
    """Arrow's default memory pool now, or None when pyarrow is not imported (or cannot be read)."""
    pa = sys.modules.get("pyarrow")
    if pa is None or not hasattr(pa, "default_memory_pool"):
        return None
    try:
        pool = pa.default_memory_pool()
        backend = str(pool.backend_name)
        probe = pa.allocate_buffer(64, memory_pool=pool)
        try:
            where = _mapping_of(int(probe.address))
        finally:
            del probe
        allocated, most = int(pool.bytes_allocated()), int(pool.max_memory())
    except Exception:  # a pyarrow too old or too odd to read: no reading, never an error
        return None
    # The system pool's blocks live in malloc's heap, with everything else's: the
    # fragmentation rule reads that one (``cgmem_nb.engine.heap``).
    resident = _resident(*where) if where is not None and backend != "system" else None
    return PoolReading("pyarrow", backend, allocated, most, resident or 0)
