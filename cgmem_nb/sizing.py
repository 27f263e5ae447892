"""Sizes of Python objects without copying their data.

Numpy arrays count ``nbytes``, pandas objects ``memory_usage(deep=True)`` (Arrow-backed
columns included: pandas asks Arrow), Polars frames ``estimated_size()``, Arrow arrays and
tables ``nbytes``, torch tensors their storage's ``nbytes()``, and
containers are walked with each shared object counted once.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

_MAX_OBJECTS = 1_000_000
# Code and namespaces are not data: a variable bound to a function does not own its module.
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType, types.FrameType)
_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None))
#: Elements of an ``object`` column sized per step: each step holds the GIL for a few
#: milliseconds, so the monitor thread keeps ticking while a big frame is measured.
OBJECT_CHUNK = 65_536
_PANDAS_CACHE_MAX = 4096
# id(pandas object) -> (what must stay equal for the figure to be reused, deep bytes)
_pandas_cache: dict[int, tuple[Any, int]] = {}


def deep_size(obj: Any, *, seen: set[int] | None = None, limit: int = _MAX_OBJECTS) -> int:
    """Bytes held by ``obj`` and what it contains, each object counted once.

    Numpy arrays count ``nbytes`` (numpy's own figure), pandas objects
    ``memory_usage(deep=True)``; containers (dict, list, tuple, set, frozenset,
    objects with ``__dict__`` or ``__slots__``) are walked, up to ``limit``
    objects. The walk is :func:`measure`'s; this returns its size.
    """
    return measure(obj, limit=limit, seen=seen).size


def array_root(arr: Any) -> Any:
    """The array that owns ``arr``'s buffer (``arr`` itself when it owns its data)."""
    np = sys.modules.get("numpy")
    root = arr
    if np is None:
        return root
    while isinstance(getattr(root, "base", None), np.ndarray):
        root = root.base
    return root


def _pandas_arrays(obj: Any) -> list[Any]:
    """The numpy arrays behind a pandas object's columns (internal API, best effort)."""
    try:
        arrays = obj._mgr.arrays
    except AttributeError:
        return []
    out = []
    for arr in arrays:
        inner = getattr(arr, "_ndarray", None)
        if inner is None:
            inner = getattr(arr, "_codes", None)
        out.append(arr if inner is None else inner)
    return out


def pandas_version(obj: Any) -> Any:
    """What must stay equal for a measure of a pandas object to be reused (None: do not reuse):
    its type, shape, column arrays, index and dtypes."""
    try:
        arrays = tuple(id(a) for a in obj._mgr.arrays)
        index = obj.index
        dtypes = tuple(str(d) for d in obj.dtypes) if hasattr(obj, "columns") else str(obj.dtype)
    except AttributeError:
        return None
    return (type(obj), obj.shape, arrays, id(index), dtypes)


def _getsizeof_sum(part: Any) -> int:
    return sum(map(sys.getsizeof, part.tolist()))


def _objects_bytes(values: Any) -> int:
    """``sys.getsizeof`` summed over an ``object`` array's elements, a chunk at a time."""
    lib = sys.modules.get("pandas._libs.lib")
    chunk_bytes = getattr(lib, "memory_usage_of_objects", None) or _getsizeof_sum
    flat = values.ravel(order="K")
    return sum(int(chunk_bytes(flat[i : i + OBJECT_CHUNK])) for i in range(0, len(flat), OBJECT_CHUNK))


def _index_bytes(index: Any, np: Any) -> int | None:
    values = getattr(index, "_values", None)
    if type(index).__name__ == "MultiIndex" or not isinstance(values, np.ndarray):
        return None if type(index).__name__ == "MultiIndex" else int(index.memory_usage(deep=True))
    extra = _objects_bytes(values) if values.dtype == object else 0
    return int(index.memory_usage(deep=False)) + extra


def _chunked_deep_bytes(item: Any, np: Any, pd: Any) -> int | None:
    """``memory_usage(deep=True)`` of a frame or series, its ``object`` columns sized in chunks."""
    if isinstance(item, pd.Index):
        return _index_bytes(item, np)
    try:
        arrays = list(item._mgr.arrays)
    except AttributeError:
        return None
    if not any(isinstance(a, np.ndarray) and a.dtype == object and a.size > OBJECT_CHUNK for a in arrays):
        return None
    index = _index_bytes(item.index, np)
    if index is None:
        return None
    total = index
    for arr in arrays:
        if isinstance(arr, np.ndarray):
            total += int(arr.nbytes) + (_objects_bytes(arr) if arr.dtype == object else 0)
        else:
            total += int(arr.memory_usage(deep=True)) if hasattr(arr, "memory_usage") else int(arr.nbytes)
    return total


def pandas_deep_bytes(item: Any) -> int:
    """A pandas object's ``memory_usage(deep=True)`` (with its index), reused while it looks unchanged.

    The figure is kept per object (identity, shape, column arrays, index and dtypes),
    so a namespace of a few GB of frames is sized once, not at every observation;
    ``object`` columns are sized in chunks of :data:`OBJECT_CHUNK` elements, so no single
    step holds the GIL for long. In-place edits of an ``object`` column's strings
    are not seen until the frame changes otherwise.
    """
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    assert pd is not None  # only called on pandas objects
    version = pandas_version(item)
    if version is not None:
        hit = _pandas_cache.get(id(item))
        if hit is not None and hit[0] == version:
            return hit[1]
    size = _chunked_deep_bytes(item, np, pd) if np is not None else None
    if size is None:
        usage = item.memory_usage(deep=True, index=True) if isinstance(item, pd.DataFrame) else item.memory_usage(deep=True)
        size = int(usage.sum()) if hasattr(usage, "sum") else int(usage)
    if version is not None:
        if len(_pandas_cache) >= _PANDAS_CACHE_MAX:
            _pandas_cache.clear()
        _pandas_cache[id(item)] = (version, size)
    return size


def _big_atom(item: Any) -> bool:
    try:
        return sys.getsizeof(item) >= 1024
    except TypeError:
        return False


def _add_buffer(result: "Measure", arr: Any) -> None:
    root = array_root(arr)
    shown, owned = result.buffers.get(id(root), (0, int(root.nbytes)))
    result.buffers[id(root)] = (shown + int(arr.nbytes), owned)


@dataclass
class Measure:
    """What :func:`measure` found reachable from one object."""

    #: Bytes, each object counted once; numpy arrays by ``nbytes``, pandas objects by
    #: ``memory_usage(deep=True)``.
    size: int = 0
    #: numpy buffers reached: ``id(owning array) -> (bytes of it counted in size,
    #: the owning array's nbytes)``.
    buffers: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: ids of the objects walked (containers and leaves, small atoms left out), for sharing checks.
    ids: set[int] = field(default_factory=set)
    #: True when the walk stopped at its object limit (the size is then a lower bound).
    truncated: bool = False


def _library_size(item: Any) -> int | None:
    """Bytes of a data library's object by the library's own accounting, or None for
    anything else: Polars frames and series (``estimated_size()``), Arrow arrays,
    tables and record batches (``nbytes``), torch tensors (their storage's ``nbytes()``).
    Their data lives outside Python's allocators, where ``sys.getsizeof`` cannot see it."""
    module = type(item).__module__
    try:
        if module.startswith("polars") and hasattr(item, "estimated_size"):
            return int(item.estimated_size())
        if module.startswith("pyarrow") and hasattr(item, "nbytes") and hasattr(item, "to_pylist"):
            return int(item.nbytes)
        if module.startswith("torch") and hasattr(item, "untyped_storage"):
            return int(item.untyped_storage().nbytes())
    except Exception:  # a library object that cannot size itself (e.g. a lazy frame): walk it
        return None
    return None


def measure(obj: Any, *, limit: int = _MAX_OBJECTS, seen: set[int] | None = None) -> Measure:
    """Walk ``obj`` like :func:`deep_size` and say what it reaches, without copying data.

    Unlike :func:`deep_size`, a numpy view counts the bytes it shows (``nbytes``,
    numpy's own figure) and the buffer it keeps alive is reported in
    :attr:`Measure.buffers`, so callers can count shared buffers once.
    """
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    seen = set() if seen is None else seen
    result = Measure()
    stack = [obj]
    visited = 0
    while stack:
        item = stack.pop()
        key = id(item)
        if key in seen:
            continue
        if visited >= limit:
            result.truncated = True
            break
        visited += 1
        seen.add(key)
        if not isinstance(item, _ATOMS) or _big_atom(item):
            result.ids.add(key)
        if pd is not None and isinstance(item, (pd.DataFrame, pd.Series, pd.Index)):
            result.size += pandas_deep_bytes(item)
            for arr in _pandas_arrays(item):
                if np is not None and isinstance(arr, np.ndarray):
                    _add_buffer(result, arr)
            continue
        if isinstance(item, _ATOMS):
            result.size += sys.getsizeof(item)
            continue
        native = _library_size(item)
        if native is not None:
            result.size += native
            continue
        if np is not None and isinstance(item, np.ndarray):
            result.size += int(item.nbytes) + (sys.getsizeof(item) if item.base is not None else sys.getsizeof(item) - int(item.nbytes))
            _add_buffer(result, item)
            if item.dtype == object:
                stack.extend(item.ravel(order="K").tolist() if item.size <= limit else [])
            continue
        try:
            result.size += sys.getsizeof(item)
        except TypeError:
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, _OPAQUE):
            continue
        else:
            d = getattr(item, "__dict__", None)
            if isinstance(d, dict):
                stack.append(d)
            for slot in getattr(type(item), "__slots__", ()) or ():
                if isinstance(slot, str) and hasattr(item, slot):
                    stack.append(getattr(item, slot))
    return result
