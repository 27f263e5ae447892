"""Build and execute ``notebooks/09-native-memory.ipynb`` (``.venv/bin/python notebooks/make_09_native_memory.py``).

Memory that Python's allocators never see: a Polars frame computed on worker threads and an
Arrow compute result, each on the line that made it, Python and native bytes apart.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [
    md(
        """
# Native memory: Polars, Arrow, DuckDB, PyTorch

Today's data libraries allocate most of their memory outside Python: Polars in Rust (jemalloc,
on its rayon worker threads), PyArrow in its memory pool, pandas' `str` columns in Arrow's pool
when pyarrow is installed, DuckDB and PyTorch through the C heap. On Linux, `%%memprofile`
samples those allocators too and puts their bytes on the line that caused them — also when a
worker thread with no Python stack made them. (Needs `polars` and `pyarrow`:
`pip install "cgmem_nb[data]"`.)
"""
    ),
    code(
        """
%load_ext cgmem_nb
import cgmem_nb
cgmem_nb.MEMORY_PROFILER.initialize(native_memory=True)   # or MEMORY_PROFILER_NATIVE=1 before starting
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

df = pl.DataFrame({"a": np.arange(10_000_000, dtype=np.int64)})
arr = pa.array(np.arange(10_000_000, dtype=np.int64))
"""
    ),
    md(
        """
Two statements, each making 160 MB (Polars) and 80 MB (Arrow) of native data. Polars computes
the new columns on its worker threads: those threads hold no GIL and have no Python stack, so
their bytes are charged to the statement the cell was running (`+ workers` in the report).
"""
    ),
    code(
        """
%%memprofile -o native
wide = df.with_columns((pl.col("a") * 2).alias("b"), (pl.col("a") + 1).alias("c"))
doubled = pc.multiply(arr, 2)
"""
    ),
    md(
        """
The report keeps three figures apart: the traced peak split into Python and native bytes, the
process's RSS, and how much of the RSS growth the lines explain. `lines` has the split per line
(`native_peak_bytes`, `domain`, `via`); `stacks` has one row per domain and thread. Each line
agrees with the library's own accounting (`estimated_size()`, `nbytes`):
"""
    ),
    code(
        """
lines = native.lines.set_index("lineno")
ours = {"polars": int(lines.loc[2, "retained_bytes"]), "arrow": int(lines.loc[3, "retained_bytes"])}
theirs = {"polars": wide.estimated_size() - df.estimated_size(), "arrow": doubled.nbytes}
for name in ours:
    assert abs(ours[name] - theirs[name]) <= 0.15 * theirs[name], (name, ours[name], theirs[name])
print(lines.loc[[2, 3], ["domain", "via"]].to_string())
print("every line agrees with the library's own figure")
"""
    ),
    md(
        """
`%memvars` sizes Arrow tables, Polars frames, torch tensors and Arrow-backed pandas columns by
the libraries' own accounting, so the variable that holds the memory is found too:
"""
    ),
    code(
        """
v = %memvars
v = v.set_index("name")
for name, truth in (("wide", wide.estimated_size()), ("doubled", doubled.nbytes)):
    assert abs(int(v.loc[name, "size_bytes"]) - truth) <= 0.05 * truth, name
print(v.loc[["wide", "doubled"], ["type", "category"]].to_string())
"""
    ),
    md(
        """
The native hooks are opt-in for now: `ProfilerConfig(native_memory=True)` or
`MEMORY_PROFILER_NATIVE=1` turns them on (off, only Python objects and numpy buffers are seen).
How each library allocates, what is counted and why: `docs/native-memory.md`.
"""
    ),
]

if __name__ == "__main__":
    sys.exit(main("09-native-memory.ipynb", CELLS))
