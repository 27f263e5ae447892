"""Build and execute ``notebooks/01-quickstart.ipynb`` (``.venv/bin/python notebooks/make_01_quickstart.py``).

The quickstart: profile one cell, read its report and its tables, save the result.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

    md(
        """
# Quickstart: where did my cell's memory go?

`cgmem_nb` profiles memory inside the kernel you are already using. Put `%%memprofile` on a
cell and you get back what the cell allocated and where (the line of `In[n]`), its peak, what it
kept, and pandas DataFrames to dig further. Everything below runs on data the notebook makes itself.
"""
    ),
    code(
        """
%load_ext cgmem_nb
import numpy as np
"""
    ),
    md(
        """
## Profile a cell

This cell builds a 200 MB temporary array, keeps 50 MB of bytes objects and drops the temporary.
The cell still behaves as without the magic: its last expression is displayed as `Out[n]` and
`keep` stays in the namespace. `-o r` stores the `ProfileResult` as `r`; `--top 2` keeps the
report short.
"""
    ),
    code(
        """
%%memprofile -o r --top 2
tmp = np.ones(25_000_000)      # 200 MB, dropped below
keep = [bytes(1_000_000) for _ in range(50)]   # 50 MB kept
del tmp
len(keep)
"""
    ),
    md(
        """
The report says the cell peaked at about 250 MB (the temporary and the kept list were alive
together) and kept about 50 MB. The two lines responsible are named by their place in the cell:
line 2 made the temporary, line 3 made what was kept.

## The summary, in MB

`r.summary` holds the headline figures in bytes (`r.summary.peak_bytes`, ...). A small table in MB:
"""
    ),
    code(
        """
# nbval-stable: whole MB of exact allocations (a 200 MB array, 50 objects of 1 MB)
import pandas as pd

figures = ["peak_bytes", "retained_bytes", "allocated_bytes"]
summary = pd.DataFrame({"MB": [round(getattr(r.summary, k) / 1e6) for k in figures]}, index=figures)
summary
""",
        "summary",
    ),
    md(
        """
## Memory by line

`r.lines` has one row per source line, biggest at the peak first. `peak_bytes` is what the line
held at the moment of the cell's peak, `retained_bytes` what was still alive at the end.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (exact byte counts move by a few hundred bytes between runs)
r.lines.head()
"""
    ),
    md("Rounded to MB, the story is stable:"),
    code(
        """
# nbval-stable: whole MB of exact allocations (a 200 MB array, 50 objects of 1 MB)
top = r.lines.head(2)
pd.DataFrame({
    "location": top["location"].str.replace(r"In\\[\\d+\\]", "In[n]", regex=True),
    "code": top["code"],
    "peak MB": (top["peak_bytes"] / 1e6).round(),
    "retained MB": (top["retained_bytes"] / 1e6).round(),
})
"""
    ),
    md(
        """
## By category and over time

`r.categories` groups the same bytes by allocation category (numpy buffers are `Vector`);
`r.timeline` has one RSS reading per monitor tick (every 100 ms by default) while the cell ran.
"""
    ),
    code(
        """
# nbval-stable: whole MB of exact allocations (a 200 MB array, 50 objects of 1 MB)
cats = r.categories
cats.assign(peak_MB=(cats["peak_bytes"] / 1e6).round())[["category", "peak_MB"]].head(2)
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (RSS readings and their times differ on every run)
r.timeline.tail(3)
"""
    ),
    md(
        """
## In plain Python

The same engine works without the magic — in a script, a test or a function:
`with MEMORY_PROFILER.session():` records the block and leaves a `ProfileResult` on the session.
"""
    ),
    code(
        """
from cgmem_nb import MEMORY_PROFILER, format_bytes

def load_blocks(n):
    return [bytearray(100_000) for _ in range(n)]

with MEMORY_PROFILER.session("load_blocks") as s:
    blocks = load_blocks(300)   # 30 MB kept

print("peak", format_bytes(s.result.summary.peak_bytes), "| kept", format_bytes(s.result.summary.retained_bytes))
print("top line:", s.result.lines.iloc[0]["code"])
"""
    ),
    md(
        """
## Save it, load it back

`to_json()` writes everything (summary and tables); `ProfileResult.from_json()` gives back an
equal result — handy to compare a run before and after a change, or to render it later with
`python -m cgmem_nb report result.json`.
"""
    ),
    code(
        """
import tempfile
from pathlib import Path
from cgmem_nb import ProfileResult

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "quickstart.json"
    r.to_json(path)
    again = ProfileResult.from_json(path)
again == r
"""
    ),
    md(
        """
Next: [02 — finding the line that made the peak](02-finding-the-peak-line.ipynb), and
[07 — memory gates in CI](07-memory-gates-in-ci.ipynb).
"""
    ),
]

if __name__ == "__main__":
    sys.exit(main("01-quickstart.ipynb", CELLS))
