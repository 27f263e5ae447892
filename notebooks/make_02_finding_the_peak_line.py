"""Build and execute ``notebooks/02-finding-the-peak-line.ipynb`` (``.venv/bin/python notebooks/make_02_finding_the_peak_line.py``).

Finding the line that made the peak, inside functions defined in the notebook.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

    md(
        """
# Finding the line that made the peak

A report pipeline runs out of memory on the full data set, but what it *keeps* is small. The
problem is a peak: some line holds a lot for a moment. `%%memprofile` takes the traced peak and
tells which line held what at that moment — also inside functions defined in the notebook.
"""
    ),
    code(
        """
%load_ext cgmem_nb
import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
sales = pd.DataFrame({
    "store": rng.integers(0, 50, 2_000_000),
    "amount": rng.random(2_000_000) * 100,
    "units": rng.integers(1, 10, 2_000_000),
})
print(f"{len(sales):,} rows, {sales.memory_usage().sum() / 1e6:.0f} MB")
"""
    ),
    md("The pipeline, as first written: a helper that cleans, then a summary per store."),
    code(
        """
def clean(df):
    everything = pd.concat([df, df.iloc[:0]])          # a defensive full copy
    everything["revenue"] = everything["amount"] * everything["units"]
    return everything[everything["revenue"] > 0]

def store_report(df):
    cleaned = clean(df)
    return cleaned.groupby("store")["revenue"].sum()
"""
    ),
    code(
        """
%%memprofile -o before --top 3
report = store_report(sales)
# NBVAL_IGNORE_OUTPUT
# (the report's figures are sampled estimates: they move a little from run to run)
report.shape
"""
    ),
    md(
        """
The cell keeps almost nothing (a 50-row result), yet it peaked well above the size of the data.
`before.lines` names the lines inside `clean` — defined in an earlier cell, so they show as
`In[n]:line` of that cell — with what each held at the peak:
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (as above: the lines' shares of the peak move a little from run to run)
def in_mb(lines, n=3):
    return pd.DataFrame({
        "location": lines["location"].str.replace(r"In\\[\\d+\\]", "In[n]", regex=True),
        "code": lines["code"],
        "peak MB": (lines["peak_bytes"] / 1e6).round(),
    }).head(n)

in_mb(before.lines)
"""
    ),
    md(
        """
The peak happened inside one call, `store_report(sales)`, and its temporaries were gone before
the call returned; the lines still explain it, because the sampled tracer keeps the composition of
its own high-water mark as it happens (in C, at no cost per sample).
`summary.peak_coverage` says how much of the peak the lines account for:
"""
    ),
    code(
        """
coverage = before.summary.peak_coverage
assert coverage >= 0.95, f"the lines explain only {coverage:.0%} of the peak"
print("the lines explain the peak")
"""
    ),
    md(
        """
`before.stacks` goes one step further: the whole call chain of each allocation, innermost
first, so a line inside a library call is tied back to the cell that called it.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (stacks run through pandas internals, whose exact frames depend on the pandas version)
before.stacks[["location", "stack", "peak_bytes"]].head(3)
"""
    ),
    md(
        """
The defensive copy made by `pd.concat` (line 2 of `clean`) is the biggest holder at the peak.
The revenue column added to that copy (line 3) and the hash table that `groupby` builds inside
pandas come next. However deep pandas' own calls go, the bytes are charged to *your* line (the
sampled tracer walks at least 64 frames per sample); the library calls it went through are
folded into the `via` column, which the report also prints under each of its top lines:
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (the pandas lines in `via` depend on the pandas version)
before.lines[["location", "code", "via"]].head(3)
"""
    ),
    md(
        """
All of these are temporaries, which is why the cell keeps almost nothing. Computing the revenue
as a plain Series and filtering once avoids the copy:
"""
    ),
    code(
        """
def store_report_lean(df):
    revenue = df["amount"] * df["units"]
    keep = revenue > 0
    return revenue[keep].groupby(df["store"][keep]).sum()
"""
    ),
    code(
        """
%%memprofile -q -o after
report_lean = store_report_lean(sales)
report_lean.shape
"""
    ),
    code(
        """
from cgmem_nb import format_bytes

assert np.allclose(report.sort_index(), report_lean.sort_index())
print("same answer; peak", format_bytes(before.summary.peak_bytes), "->", format_bytes(after.summary.peak_bytes))
print("lower peak:", after.summary.peak_bytes < 0.7 * before.summary.peak_bytes)
"""
    ),
    md(
        """
For a one-liner, `%memprofile STATEMENT` does the same on one statement; `-q` hides the report
and the result stays in `MEMORY_PROFILER.last_result`.
"""
    ),
    code(
        """
%memprofile -q -o one report_lean = store_report_lean(sales)
print(round(one.summary.peak_bytes / 1e6) <= round(before.summary.peak_bytes / 1e6))
"""
    ),
    md(
        """
`--limit SIZE` measures a cell against a memory limit: the **kernel's total memory** (its RSS)
while the cell runs, not what the cell adds, and `--guard` interrupts the cell at 95% of it.
Write a size as one word or quote it; a unit on its own gets a hint rather than argparse's bare
"unrecognized arguments":
"""
    ),
    code(
        """
%%memprofile --limit 500 MB
report_lean = store_report_lean(sales)
""",
        "raises-exception",
    ),
]

if __name__ == "__main__":
    sys.exit(main("02-finding-the-peak-line.ipynb", CELLS))
