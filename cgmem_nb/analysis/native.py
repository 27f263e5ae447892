"""Recommendation rules about memory outside Python's allocators: Arrow's pool, data held twice.

* :func:`arrow_pool`: Arrow's memory pool keeps freed pages resident (mimalloc, Arrow's
  default, keeps all of them until asked); ``release_unused()`` returns them. Savings: the
  pool's resident bytes less what its data uses (:mod:`cgmem_nb.session.pools`).
* :func:`library_duplicates`: the same data held twice in memory of its own by Polars,
  Arrow or pandas (a Polars frame and its ``to_pandas()`` copy, an Arrow table and a Polars
  frame made from it with a copy...). Savings: the copy's bytes by its library's own
  accounting. Objects that share buffers (zero-copy conversions such as
  ``pl.from_arrow``, ``df.to_arrow()``) are one copy and are never named. Two pandas
  frames are the ``duplicates`` rule's.

Nothing here imports Polars or pyarrow: objects of a library that is not imported cannot
exist, and pyarrow is what compares them (without it, the rule has nothing to do).
"""

from __future__ import annotations

import sys
from typing import Any, Iterable, Sequence

from ..schema import Difficulty
from ..sizing import deep_size
from ..units import format_bytes
from .drafts import MB, Context, Draft

__all__ = ["arrow_pool", "library_duplicates"]

#: Least pool memory worth a recommendation (a warm pool keeps a few MB for small buffers).
POOL_MIN_BYTES = 16 * MB
#: Rows compared at a time when two string columns differ in Arrow type (a cast of a slice).
_SLICE_ROWS = 65_536
_STRINGS = ("string", "large_string", "string_view")


def arrow_pool(ctx: Context) -> Iterable[Draft]:
    """Arrow's memory pool holding resident memory no Arrow data uses: ``release_unused()``."""
    last = ctx.last
    reading = last.arrow_pool if last is not None else None
    if reading is None:
        return
    unused = reading.unused_bytes
    if unused < max(ctx.min_savings, POOL_MIN_BYTES):
        return
    action = "import pyarrow as pa\npa.default_memory_pool().release_unused()"
    if reading.backend == "jemalloc":
        action += "\npa.jemalloc_set_decay_ms(0)  # and from now on, return freed pages at once"
    yield Draft(
        "arrow_pool", f"pyarrow pool ({reading.backend})",
        f"Arrow's memory pool ({reading.backend}) keeps {format_bytes(reading.resident_bytes)} resident while its data "
        f"uses {format_bytes(reading.allocated_bytes)}: {format_bytes(unused)} of freed Arrow buffers it has not returned "
        "to the system (it reuses them for Arrow's next allocations; nothing else can). `release_unused()` gives them back.",
        action, unused, Difficulty.Easy, 0, True,
    )


def _library(obj: Any) -> str | None:
    module = type(obj).__module__
    for name in ("polars", "pyarrow", "pandas"):
        if module == name or module.startswith(name + "."):
            return name
    return None


def _pandas_column(series: Any, pa: Any) -> Any:
    """A pandas column as an Arrow chunked array without copying it, or None."""
    arrow = getattr(series.array, "_pa_array", None)
    if arrow is not None:
        return arrow
    np = sys.modules.get("numpy")
    if np is None or getattr(series.dtype, "kind", "") not in ("i", "u", "f"):
        return None  # objects, categories, dates: no zero-copy Arrow form to compare
    values = series.to_numpy()
    return pa.chunked_array([pa.array(values)]) if isinstance(values, np.ndarray) else None


def _columns(obj: Any, library: str, pa: Any) -> list[Any] | None:
    """The Arrow chunked arrays of a frame's columns (or of one column), had without copying
    data; None when they cannot be (the object is then not compared)."""
    if library == "pyarrow":
        if isinstance(obj, pa.Table):
            return list(obj.columns)
        if isinstance(obj, pa.RecordBatch):
            return [pa.chunked_array([c]) for c in obj.columns]
        if isinstance(obj, pa.ChunkedArray):
            return [obj]
        return [pa.chunked_array([obj])] if isinstance(obj, pa.Array) else None
    if library == "polars":
        pl = sys.modules["polars"]
        newest = pl.CompatLevel.newest()  # Polars' own string layout: no conversion copy
        if isinstance(obj, pl.DataFrame):
            return list(obj.to_arrow(compat_level=newest).columns)
        return [pa.chunked_array([obj.to_arrow(compat_level=newest)])] if isinstance(obj, pl.Series) else None
    pd = sys.modules["pandas"]
    if isinstance(obj, pd.DataFrame):
        if not obj.columns.is_unique:
            return None
        cols = [_pandas_column(obj[c], pa) for c in obj.columns]
        return None if any(c is None for c in cols) else cols
    if isinstance(obj, pd.Series):
        col = _pandas_column(obj, pa)
        return None if col is None else [col]
    return None


def _spans(columns: Sequence[Any]) -> list[tuple[int, int]]:
    """The address ranges of every buffer behind ``columns``."""
    return [
        (buf.address, buf.address + buf.size)
        for col in columns
        for chunk in col.chunks
        for buf in chunk.buffers()
        if buf is not None and buf.size > 0
    ]


def _overlap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> bool:
    spans = sorted([(lo, hi, 0) for lo, hi in a] + [(lo, hi, 1) for lo, hi in b])
    end = {0: -1, 1: -1}
    for lo, hi, side in spans:
        if lo < end[1 - side]:
            return True
        end[side] = max(end[side], hi)
    return False


def _same_values(a: Any, b: Any) -> bool:
    """Equal contents; string columns of different Arrow layouts compared a slice at a time."""
    if a.type == b.type:
        return bool(a.equals(b))
    if str(a.type) not in _STRINGS or str(b.type) not in _STRINGS or len(a) != len(b):
        return False
    pa = sys.modules["pyarrow"]
    for start in range(0, len(a), _SLICE_ROWS):
        left = a.slice(start, _SLICE_ROWS).cast(pa.large_string())
        right = b.slice(start, _SLICE_ROWS).cast(pa.large_string())
        if not left.equals(right):
            return False
    return True


_NAMES = {"polars": "Polars", "pyarrow": "Arrow", "pandas": "pandas"}
_COUNT = {"polars": "Polars' `estimated_size()`", "pyarrow": "Arrow's `nbytes`", "pandas": "pandas' `memory_usage(deep=True)`"}


def _shape(obj: Any, library: str, pa: Any) -> tuple[Any, ...] | None:
    """What two holders of the same data have in common, read without converting anything."""
    if library == "pyarrow":
        if isinstance(obj, (pa.Table, pa.RecordBatch)):
            return "frame", tuple(obj.schema.names), obj.num_rows
        return ("column", (), len(obj)) if isinstance(obj, (pa.Array, pa.ChunkedArray)) else None
    module = sys.modules[library]
    if isinstance(obj, module.DataFrame):
        return "frame", tuple(map(str, obj.columns)), obj.shape[0]
    return ("column", (), len(obj)) if isinstance(obj, module.Series) else None


def library_duplicates(ctx: Context) -> Iterable[Draft]:
    """The same data held twice by Polars, Arrow or pandas objects (in buffers of their own)."""
    pa = sys.modules.get("pyarrow")
    if pa is None:
        return
    groups: dict[tuple[Any, ...], list[tuple[str, str, Any]]] = {}
    for name, obj in ctx.namespace.items():
        library = _library(obj)
        shape = _shape(obj, library, pa) if library is not None else None
        if shape is not None and library is not None:
            groups.setdefault(shape, []).append((name, library, obj))
    for members in groups.values():
        if len(members) < 2 or all(lib == "pandas" for _, lib, _ in members):
            continue
        converted = []
        for name, library, obj in members:
            try:
                found = _columns(obj, library, pa)
            except Exception:  # an object that will not convert without a copy (or at all): not compared
                continue
            if found is not None:
                converted.append((name, library, found))
        yield from _twins(ctx, converted)


def _twins(ctx: Context, members: list[tuple[str, str, list[Any]]]) -> Iterable[Draft]:
    kept: list[tuple[str, str, list[Any], list[tuple[int, int]]]] = []
    for name, library, columns in members:
        spans = _spans(columns)
        twin = None
        for kname, klib, kcols, kspans in kept:
            if library == klib == "pandas" or _overlap(spans, kspans):
                continue  # two pandas frames are `duplicates`'; shared buffers are one copy
            if all(_same_values(x, y) for x, y in zip(kcols, columns)):
                twin = (kname, klib)
                break
        if twin is None:
            kept.append((name, library, columns, spans))
            continue
        size = deep_size(ctx.namespace[name])
        if size < ctx.min_savings:
            continue
        yield Draft(
            "library_duplicates", name,
            f"`{name}` ({_NAMES[library]}) holds the same data as `{twin[0]}` ({_NAMES[twin[1]]}) in memory of its own "
            f"({format_bytes(size)} by {_COUNT[library]}); keep one, and convert when needed "
            "(Polars and Arrow convert to each other without copying).",
            f"del {name}  # the same data is in {twin[0]}", size, Difficulty.Easy, 0, True,
        )
