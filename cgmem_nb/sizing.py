"""Sizes of Python objects without copying their data.

``deep_size`` knows numpy arrays (``nbytes``; a view owns none of its base's
bytes), pandas objects (``memory_usage(deep=True)``) and walks containers,
counting each shared object once.
"""

from __future__ import annotations

import sys
from typing import Any

_MAX_OBJECTS = 1_000_000


def _numpy_size(obj: Any) -> int | None:
    np = sys.modules.get("numpy")
    if np is not None and isinstance(obj, np.ndarray):
        # numpy's __sizeof__ includes the data buffer only when the array owns it.
        return int(sys.getsizeof(obj))
    return None


def _pandas_size(obj: Any) -> int | None:
    pd = sys.modules.get("pandas")
    if pd is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return int(obj.memory_usage(deep=True, index=True).sum())
    if isinstance(obj, (pd.Series, pd.Index)):
        return int(obj.memory_usage(deep=True))
    return None


def deep_size(obj: Any, *, seen: set[int] | None = None, limit: int = _MAX_OBJECTS) -> int:
    """Bytes held by ``obj`` and what it contains, each object counted once.

    A numpy array counts its own buffer (``sys.getsizeof`` includes it when the
    array owns its data; a view counts only its header). Pandas objects count
    ``memory_usage(deep=True)``. Containers (dict, list, tuple, set, frozenset,
    objects with ``__dict__`` or ``__slots__``) are walked breadth first, up to
    ``limit`` objects.
    """
    seen = set() if seen is None else seen
    total = 0
    stack = [obj]
    visited = 0
    while stack and visited < limit:
        item = stack.pop()
        key = id(item)
        if key in seen:
            continue
        seen.add(key)
        visited += 1
        size = _pandas_size(item)
        if size is not None:
            total += size
            continue
        size = _numpy_size(item)
        if size is not None:
            total += size
            continue
        try:
            total += sys.getsizeof(item)
        except TypeError:
            continue
        if isinstance(item, (str, bytes, bytearray, int, float, complex, bool, type(None))):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        else:
            d = getattr(item, "__dict__", None)
            if isinstance(d, dict):
                stack.append(d)
            for slot in getattr(type(item), "__slots__", ()) or ():
                if isinstance(slot, str) and hasattr(item, slot):
                    stack.append(getattr(item, slot))
    return total
