"""What memory a frame's columns show: keys that two frames sharing a buffer have in common.

Frames made with ``df.copy(deep=False)``, views and pandas' copies of Arrow columns (whose
buffers are immutable and shared) hold the same memory under two names; the savings of a
recommendation are counted once for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["buffer_key", "column_array", "share_a_buffer"]


def buffer_key(values: Any) -> tuple[Any, ...] | None:
    """What identifies the memory behind an array: its data address, shape and strides, or
    for an Arrow-backed array the addresses of its chunks' buffers (two frames that share a
    column's buffers give the same key)."""
    if isinstance(values, np.ndarray):
        return (int(values.__array_interface__["data"][0]), values.shape, values.strides)
    chunked = getattr(values, "_pa_array", None)  # pandas' Arrow-backed arrays
    chunks = getattr(chunked, "chunks", None)
    if chunks is None:
        return None
    addresses = tuple(
        (buffer.address if buffer is not None else 0, chunk.offset, len(chunk))
        for chunk in chunks
        for buffer in chunk.buffers()
    )
    return ("arrow", addresses) if addresses else None


def share_a_buffer(a: Any, b: Any) -> bool:
    """True when two frames (or arrays) show the same memory: a shallow copy, a view."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.shares_memory(a, b))
    keys = {buffer_key(column_array(a[c])) for c in a.columns} - {None}
    return any(buffer_key(column_array(b[c])) in keys for c in b.columns)


def column_array(col: pd.Series) -> Any:
    """The array a column holds itself: numpy's, the objects behind a text column, or Arrow's."""
    array = col.array
    raw = getattr(array, "_ndarray", None)
    if isinstance(raw, np.ndarray):
        return raw
    if hasattr(array, "_pa_array"):
        return array
    return None if isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else col.to_numpy()
