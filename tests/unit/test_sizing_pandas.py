"""A pandas object's deep size: pandas' own figure, sized in chunks, reused while unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cgmem_nb import sizing
from cgmem_nb.sizing import OBJECT_CHUNK, pandas_deep_bytes

N = 3 * OBJECT_CHUNK + 17


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "s": np.array([f"name {i}" * (i % 3 + 1) for i in range(N)], dtype=object),
        "x": np.arange(N, dtype=float),
        "c": pd.Categorical(["a", "b", "c"] * (N // 3) + ["a"] * (N % 3)),
        "o": np.array(list(range(N)), dtype=object),
    })


def _pandas_figure(obj: object) -> int:
    usage = obj.memory_usage(deep=True)  # type: ignore[attr-defined]
    return int(usage.sum()) if hasattr(usage, "sum") else int(usage)


@pytest.mark.parametrize("pick", [
    lambda f: f, lambda f: f["s"], lambda f: f.set_index("s"), lambda f: f.set_index("s")["x"],
    lambda f: pd.Index(f["s"]), lambda f: f.set_index(["s", "x"]), lambda f: f.head(10),
])
def test_deep_bytes_equal_pandas_own_figure(pick: object) -> None:
    obj = pick(_frame())  # type: ignore[operator]
    sizing._pandas_cache.clear()
    assert pandas_deep_bytes(obj) == _pandas_figure(obj)


def test_figure_is_reused_until_the_frame_changes() -> None:
    frame = _frame()
    first = pandas_deep_bytes(frame)
    # Same object, same arrays: the cached figure (even a wrong one planted here) is returned.
    key = id(frame)
    version, _ = sizing._pandas_cache[key]
    sizing._pandas_cache[key] = (version, 1)
    assert pandas_deep_bytes(frame) == 1
    frame["y"] = np.zeros(N)  # a new column: a new version, measured again
    assert pandas_deep_bytes(frame) == _pandas_figure(frame) == first + 8 * N
