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

import sys
from dataclasses import dataclass

from cgmem_nb.engine import heap

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
    resident = heap.resident_bytes(*where) if where is not None and backend != "system" else None
    return PoolReading("pyarrow", backend, allocated, most, resident or 0)
