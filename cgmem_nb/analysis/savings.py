"""Savings measured on the data: what converting a text column to ``category`` frees, the
smallest integer dtype that holds an array. Pure: nothing here changes the user's objects.

A column's savings from ``category`` count the bytes the column really frees (its
pointer array plus each distinct string object once) minus the codes and
categories it would need; for columns over ``exact_rows`` rows they come from a
random sample of ``sample_rows`` rows, with a 95% error bound. A column stored in
Arrow (pandas' ``str`` dtype when pyarrow is installed, ``ArrowDtype``) frees its Arrow
buffers, as Arrow counts them, and needs codes plus its distinct values, also in Arrow.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["arrow_text", "category_savings", "smallest_int_dtype"]


def _text_values(col: pd.Series) -> np.ndarray | None:
    """The object array behind a text column (no copy), or None if it is not text."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return None
    if col.dtype == object or isinstance(col.dtype, pd.StringDtype):
        arr = getattr(col.array, "_ndarray", None)
        if isinstance(arr, np.ndarray) and arr.dtype == object:
            return arr
        values = col.to_numpy()
        return values if values.dtype == object else None
    return None


def _distinct_object_bytes(values: np.ndarray) -> int:
    seen: set[int] = set()
    total = 0
    getsizeof = sys.getsizeof
    for v in values:
        key = id(v)
        if key not in seen:
            seen.add(key)
            total += getsizeof(v)
    return total


_getsizeof = np.frompyfunc(sys.getsizeof, 1, 1)
_id = np.frompyfunc(id, 1, 1)


def _codes_itemsize(n_unique: int) -> int:
    for dtype in (np.int8, np.int16, np.int32):
        if n_unique < np.iinfo(dtype).max:
            return int(np.dtype(dtype).itemsize)
    return 8


def arrow_text(col: pd.Series) -> bool:
    """True for a text column held by Arrow (pandas' ``str`` dtype with pyarrow, or an Arrow string
    dtype): :func:`category_savings` measures it whole, never from a sample."""
    dtype = col.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    arrow_dtype = getattr(pd, "ArrowDtype", None)
    return arrow_dtype is not None and isinstance(dtype, arrow_dtype) and pd.api.types.is_string_dtype(dtype)


def _arrow_category_savings(col: pd.Series) -> tuple[int, int, float] | None:
    n = len(col)
    if n == 0:
        return None
    uniques = pd.Series(col.dropna().unique(), dtype=col.dtype)
    k = len(uniques)
    freed = int(col.memory_usage(deep=True, index=False))
    kept = n * _codes_itemsize(k) + int(uniques.memory_usage(deep=True, index=False))
    return freed - kept, 0, k / n


def category_savings(col: pd.Series, *, exact_rows: int = 100_000, sample_rows: int = 50_000) -> tuple[int, int, float] | None:
    """Bytes converting ``col`` to ``category`` frees: ``(savings, error_95, unique_share)``.

    What the column frees is its pointer array and each distinct string object
    once (many rows may share one object); what the category needs is its codes
    and one object per distinct value. None when the column is not text.
    """
    if arrow_text(col):
        return _arrow_category_savings(col)
    values = _text_values(col)
    if values is None or len(values) == 0:
        return None
    n = len(values)
    if n <= exact_rows:
        uniques = pd.unique(values)
        k = len(uniques)
        exact_freed = values.nbytes + _distinct_object_bytes(values)
        exact_kept = n * _codes_itemsize(k) + uniques.nbytes + sum(sys.getsizeof(u) for u in uniques)
        return exact_freed - exact_kept, 0, k / n
    rng = np.random.default_rng(0)
    idx = rng.choice(n, size=sample_rows, replace=False)
    sample = values[idx]
    uniques = pd.unique(sample)
    k = len(uniques)
    # Element-wise calls through numpy's loops: no Python frame per element.
    sizes = _getsizeof(sample).astype(np.float64)
    _ids, first = np.unique(_id(sample).astype(np.uint64), return_index=True)
    distinct_ids = len(first)
    kept_objects = float(_getsizeof(uniques).astype(np.float64).sum()) if k else 0.0
    if distinct_ids > 0.9 * len(sample):
        # Each row has an object of its own: scale the per-row bytes, with a CLT bound.
        obj_bytes = float(sizes.mean()) * n
        error = 1.96 * sizes.std(ddof=1) * n / math.sqrt(len(sample))
    else:
        # Rows share a few objects: those seen are (nearly) all there are.
        obj_bytes = float(sizes[first].sum())
        singletons = int((pd.Series(sample).value_counts() == 1).sum())
        error = singletons / len(sample) * n * float(sizes.mean())
    freed = float(values.nbytes) + obj_bytes
    kept = float(n * _codes_itemsize(k) + 8 * k) + kept_objects
    return int(freed - kept), int(error), k / len(sample)


_INT_TYPES = (np.int8, np.int16, np.int32, np.int64)
_UINT_TYPES = (np.uint8, np.uint16, np.uint32, np.uint64)


def smallest_int_dtype(values: np.ndarray) -> np.dtype[Any] | None:
    """The smallest integer dtype that holds every value of ``values`` (None if not smaller)."""
    if values.size == 0:
        return None
    lo, hi = int(values.min()), int(values.max())
    kinds = _UINT_TYPES if lo >= 0 and values.dtype.kind == "u" else _INT_TYPES
    for t in kinds:
        info = np.iinfo(t)
        if info.min <= lo and hi <= info.max:
            new = np.dtype(t)
            return new if new.itemsize < values.dtype.itemsize else None
    return None
