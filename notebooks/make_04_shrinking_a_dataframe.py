"""Build and execute ``notebooks/04-shrinking-a-dataframe.ipynb`` (``.venv/bin/python notebooks/make_04_shrinking_a_dataframe.py``).

Shrinking a DataFrame with %memvars and %memrecs, checking each measured saving.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

    md("""
# Shrinking a DataFrame

A sales table of a million rows takes far more memory than its content needs. `%memvars` shows
where it goes, `%memrecs` says what to change — with the code and the bytes each change frees,
measured on the data — and we check the promise by applying them.
"""),
    code("%load_ext cgmem_nb"),
    code("""
import numpy as np
import pandas as pd
from cgmem_nb import format_bytes

rng = np.random.default_rng(7)
n = 1_000_000
sales = pd.DataFrame({
    # Text read from a file gives every row its own string object, as here.
    "city": [f"City {i:02d}" for i in rng.integers(0, 40, n)],
    "product": [f"Product {i:03d}" for i in rng.integers(0, 150, n)],
    "store_id": rng.integers(0, 300, n),
    "quantity": rng.integers(1, 20, n),
    "price": rng.uniform(1, 500, n).round(2),
})
backup = sales.copy()   # "just in case"
sales.head(3)
"""),
    md("## Where the memory is"),
    code("""
v = %memvars
v  # sizes shown in KB/MB/GB; v["size_bytes"] is still bytes (v.raw: the plain DataFrame)
""", varies=True),
    md("""
## What to change

Each recommendation carries the code to paste. `estimated_savings` is measured: for a text column,
the bytes the column really frees when converted (its pointers plus each distinct string object
once) minus what the category needs. Frames that share a column's buffer (`df.copy(deep=False)`)
are named together and their savings counted once; a column is described by its count of
distinct values ("7 distinct values in 1,000,000 rows"), not by a rounded percentage.
"""),
    code("""
recs = %memrecs
recs  # priority 1 first; the action in full, ready to paste
""", varies=True),
    md("The float64 → float32 part of the downcast changes precision, so that one is marked *Medium*:"),
    code("print(recs.loc[recs['rule'] == 'downcast_numbers', 'description'].iloc[0])", varies=True),
    md("""
## Applying them, and checking the estimates

We apply each action for `sales` and compare what pandas reports before and after with the
estimate. (Every row owns its string here, so pandas' `memory_usage(deep=True)` is the true
figure; when rows share string objects pandas counts each row anyway, and cgmem_nb's estimate is
the lower, real one.)
"""),
    code("""
def usage():
    return int(sales.memory_usage(deep=True).sum())

checks = []
for rule, target, action, estimate in recs[["rule", "target", "action", "estimated_savings"]].itertuples(index=False):
    if rule not in ("category_columns", "downcast_numbers") or not target.startswith("sales"):
        continue
    before = usage()
    exec(action)
    checks.append({"change": action, "estimated": estimate, "freed": before - usage()})

report = pd.DataFrame(checks)
report["error"] = ((report["estimated"] - report["freed"]) / report["freed"]).map("{:+.1%}".format)
report.assign(estimated=report["estimated"].map(format_bytes), freed=report["freed"].map(format_bytes))
""", varies=True),
    code("del backup   # the duplicate: %memrecs found the same data held twice"),
    code("""
print("sales now:", format_bytes(sales.memory_usage(deep=True).sum()))
sales.dtypes
""", varies=True),
]

if __name__ == "__main__":
    sys.exit(main("04-shrinking-a-dataframe.ipynb", CELLS))
