"""The rules about native memory on real Polars, Arrow and pandas objects: data held twice,
zero-copy conversions left alone, Arrow's pool read without importing anything."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cgmem_nb.analysis.native import library_duplicates
from cgmem_nb.analysis.recommend import Context

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")

MB = 1000**2
ROWS = 2_000_000  # two int64 columns: 32 MB of data per copy


def found(namespace: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [(d.target, d.estimated_savings, d.description) for d in library_duplicates(Context(namespace=namespace))]


def frame() -> Any:
    return pl.DataFrame({"a": np.arange(ROWS), "b": np.arange(ROWS) * 3, "s": [f"city_{i % 500}" for i in range(ROWS)]})


def test_a_polars_frame_and_its_pandas_copy_are_the_same_data_held_twice() -> None:
    df = frame()
    pdf = df.to_pandas()  # numbers copied to numpy, strings to an Arrow string column of pandas' own
    ((target, savings, text),) = found({"df": df, "pdf": pdf})
    assert target == "pdf"
    # The copy's bytes by pandas' own accounting; at least the 32 MB of int64 the test made.
    assert savings == int(pdf.memory_usage(deep=True).sum())
    assert savings >= 2 * 8 * ROWS
    assert "`df` (Polars)" in text and "memory_usage(deep=True)" in text


def test_two_arrow_tables_with_equal_columns_in_their_own_buffers() -> None:
    first = pa.table({"x": pa.array(np.arange(ROWS, dtype=np.int64))})
    second = pa.table({"x": pa.array(np.arange(ROWS, dtype=np.int64))})  # another numpy buffer
    ((target, savings, _),) = found({"first": first, "second": second})
    assert (target, savings) == ("second", second.nbytes)
    assert abs(savings - 8 * ROWS) <= 0.01 * 8 * ROWS


def test_zero_copy_conversions_are_one_copy_and_never_named() -> None:
    df = frame().select("a", "b")  # numbers only: every conversion below shares its buffers
    table = df.to_arrow()
    back = pl.from_arrow(table)
    arrow_pandas = table.to_pandas(types_mapper=pd.ArrowDtype)
    column = df["a"]
    assert found({"df": df, "table": table, "back": back, "arrow_pandas": arrow_pandas, "column": column,
                  "column_arrow": column.to_arrow()}) == []


def test_frames_of_the_same_shape_but_other_values_are_not_duplicates() -> None:
    df = frame()
    other = pl.DataFrame({"a": np.arange(ROWS), "b": np.arange(ROWS) * 5, "s": [f"city_{i % 500}" for i in range(ROWS)]})
    assert found({"df": df, "other": other, "pdf": other.to_pandas().assign(a=lambda f: f["a"] + 1)}) == []


def test_two_pandas_frames_are_left_to_the_duplicates_rule() -> None:
    pdf = frame().to_pandas()
    assert found({"pdf": pdf, "again": pdf.copy()}) == []


LAZY = """
import sys
sys.modules["pyarrow"] = None  # pandas imports pyarrow itself when it is installed: block it to see ours
import pandas as pd
from cgmem_nb.analysis.recommend import RECOMMENDATION_ENGINE, Context
from cgmem_nb.session.holders import observe
ns = {"df": pd.DataFrame({"a": range(10)})}
obs = observe(ns, limit=10**10)
assert obs.arrow_pool is None
RECOMMENDATION_ENGINE.recommend(Context(namespace=ns, observations=[obs]))
print("polars" in sys.modules, sys.modules["pyarrow"] is None)
"""


def test_the_rules_and_the_pool_reading_import_neither_polars_nor_pyarrow() -> None:
    out = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "True"]


SYSTEM_POOL = """
import numpy as np, pyarrow as pa
from cgmem_nb.analysis.native import arrow_pool
from cgmem_nb.analysis.recommend import Context
from cgmem_nb.session.holders import observe
assert pa.default_memory_pool().backend_name == "system"
heap = [bytes(200) for _ in range(300_000)]  # 60+ MB of malloc's heap in use beside the pool's blocks
kept = pa.array(np.arange(1000)).cast(pa.int32())  # a block of the pool in that heap
obs = observe({}, limit=10**10)
print(obs.arrow_pool.resident_bytes, len(list(arrow_pool(Context(observations=[obs])))))
"""


def test_the_system_pool_is_not_read_as_its_heap() -> None:
    """Arrow's ``system`` pool allocates with malloc: the mapping of its blocks is malloc's heap,
    which holds everything else's memory too (the fragmentation rule reads that one)."""
    import os

    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system")
    out = subprocess.run([sys.executable, "-c", SYSTEM_POOL], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["0", "0"]
