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
## Everywhere the numbers show up

The split is in the report, and in every other view: the live panel (`%%memprofile --live`) and
the dashboard (`%memdash`) show a line under their figures (`Python / native: … at the peak`),
a result's `stacks.csv` has the `domain` and `via` columns, the profiler's `sessions` table and
`/api/metrics.json` carry the split, and the Prometheus text has it as gauges with a `domain`
label:
"""
    ),
    code(
        """
import cgmem_nb
from prometheus_client.parser import text_string_to_metric_families
text = cgmem_nb.export.prometheus()
gauges = {(s.name, s.labels.get("domain")): s.value
          for family in text_string_to_metric_families(text) for s in family.samples}
made = theirs["polars"] + theirs["arrow"]     # what the profiled cell made, by the libraries' count
assert abs(gauges[("cgmem_session_peak_bytes", "native")] - made) <= 0.15 * made
assert abs(gauges[("cgmem_session_peak_bytes", "native")] - native.summary.native_peak_bytes) <= 1
print(sorted(key for key in gauges if key[0] in ("cgmem_session_peak_bytes", "cgmem_session_retained_bytes")))
"""
    ),
    md(
        """
## What to change: recommendations about native memory

Two rules of `%memrecs` look at native memory. **`arrow_pool`**: Arrow's memory pool (mimalloc by
default) keeps the pages of freed buffers resident for its next allocations; the rule compares the
pool's resident pages with what its data uses and says how much `release_unused()` gives back.
**`library_duplicates`**: the same data held twice by Polars, Arrow or pandas objects in memory of
their own (a frame and its `to_pandas()` copy); conversions that share buffers (`to_arrow()`,
`pl.from_arrow`) are one copy and are never named.
"""
    ),
    code(
        """
from cgmem_nb.engine import probes
head = wide.head(2_000_000)                   # a zero-copy slice of `wide`
head_pd = head.to_pandas()                    # a copy: the same data held twice
head_arrow = head.to_arrow()                  # shares head's buffers: not a copy
freed = doubled.nbytes
del doubled                                   # Arrow's pool keeps its 80 MB resident
recs = %memrecs
recs = recs.raw.set_index("rule")            # the plain DataFrame (bytes as numbers)
pool = int(recs.loc["arrow_pool", "estimated_savings"])
assert abs(pool - freed) <= 0.15 * freed, (pool, freed)
twice = recs.loc[["library_duplicates"]]
assert twice["target"].tolist() == ["head_pd"]
assert int(twice["estimated_savings"].iloc[0]) == int(head_pd.memory_usage(deep=True).sum())
before = probes.rss()
pa.default_memory_pool().release_unused()     # the rule's action
assert abs((before - probes.rss()) - pool) <= 0.15 * pool
print(sorted(set(recs.index) & {"arrow_pool", "library_duplicates"}))
print("release_unused() gave back what the rule said (asserted above)")
"""
    ),
    md(
        """
The native hooks are on by default on Linux. `MEMORY_PROFILER_NATIVE=0` (before the kernel
starts) or `ProfilerConfig(native_memory=False)` turns them off: then only Python objects and
numpy buffers are seen.
How each library allocates, what is counted and why: `docs/native-memory.md`.
"""
    ),
]

if __name__ == "__main__":
    sys.exit(main("09-native-memory.ipynb", CELLS))
