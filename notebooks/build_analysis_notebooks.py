"""Build and execute the analysis tutorials (03 and 04) with nbformat and nbclient.

    .venv/bin/python notebooks/build_analysis_notebooks.py

Outputs are real: each notebook runs top to bottom in a fresh ``python3`` kernel.
Cells whose figures vary between runs start with ``# NBVAL_IGNORE_OUTPUT``, and so do
cells that name output holders: a kernel run by nbval keeps no output history (no ``Out[n]``),
so the same frame is held by ``___`` there.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent
IGNORE = "# NBVAL_IGNORE_OUTPUT\n"


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str, *, varies: bool = False) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell((IGNORE if varies else "") + text.strip())


LEAK = [
    md("""
# Hunting a leak

A notebook that scores batches of orders gets slower and fatter with every run. Nothing in it
*looks* like it keeps data: each cell computes a score and moves on. Let `cgmem_nb` watch the cells,
then ask it who holds the memory.

Everything here is generated in the notebook; it runs in a few seconds.
"""),
    code("%load_ext cgmem_nb\n%memwatch on"),
    md("""
The scoring code. Two habits that look harmless: an audit trail kept "just in case", and a
feature loader memoized with `functools.cache` (unbounded) because loading is slow.
"""),
    code("""
import functools
import numpy as np
import pandas as pd

audit_log = []                      # every batch, forever

@functools.cache                    # unbounded: one entry per batch id
def load_features(batch_id):
    rng = np.random.default_rng(batch_id)
    return rng.normal(size=(50_000, 8))   # 3.2 MB per batch

def score(batch_id):
    features = load_features(batch_id)
    orders = pd.DataFrame(features, columns=[f"f{i}" for i in range(8)])
    orders["score"] = orders.sum(axis=1)
    audit_log.append(orders)        # keeps the whole frame, 3.6 MB a batch
    return float(orders["score"].mean())

batch = 0
"""),
    md("We score one batch per cell, as the analyst would while iterating."),
    code("score(batch); batch += 1"),
    code("score(batch); batch += 1"),
    code("score(batch); batch += 1"),
    code("score(batch); batch += 1"),
    md("""
And, like everyone, we look at a big intermediate result once by leaving it as the last
expression of a cell. Jupyter keeps it in `Out[n]` for good.
"""),
    code("pd.DataFrame(load_features(0)).describe(percentiles=[]).T.head(3)  # small: fine"),
    code("pd.DataFrame(np.ones((1_000_000, 2)), columns=['a', 'b'])", varies=False),
    md("""
## What did each cell cost?

`cgmem_nb.history()` has one row per cell since `%memwatch on`: RSS before, after and at the peak
(the kernel's own peak, so nothing inside a C call is missed), and a `heavy` flag. The traced
columns are empty because we watch without stacks (`%memwatch on --stacks` fills them, at a cost).
"""),
    code("""
import cgmem_nb
from cgmem_nb import format_bytes

hist = cgmem_nb.history()
view = hist[["cell", "code", "retained_bytes", "heavy"]].copy()
view["retained"] = view.pop("retained_bytes").map(format_bytes)
view
""", varies=True),
    md("Every `score` cell keeps about 7 MB. Which objects?"),
    code("""
leaks = %memleaks
leaks[["holder", "holder_kind", "category", "status", "estimated_impact"]].assign(
    size=leaks["size"].map(format_bytes), growth=leaks["growth"].map(format_bytes))
""", varies=True),
    md("""
Three holders, each named:

* `audit_log`, a **variable** that grew in every watched cell;
* `load_features`, an **unbounded cache** that keeps growing (a bounded `lru_cache` that filled up
  would not be reported);
* `Out[n]`, the **output history**, holds a 16 MB frame that no variable holds any more.

Each leak carries the code that frees it:
"""),
    code("for leak in cgmem_nb.MEMORY_PROFILER.detect_leaks():\n    print(f'{leak.holder:24} {leak.fix.splitlines()[0]}')", varies=True),
    md("""
The same findings, ranked with the bytes each fix frees (measured, not guessed), are in `%memrecs`:
"""),
    code("""
recs = %memrecs
recs[["priority", "rule", "target", "difficulty"]].assign(saves=recs["estimated_savings"].map(format_bytes))
""", varies=True),
    md("## Fixing it"),
    code("""
audit_log.clear()                 # keep a summary instead, if anything
load_features.cache_clear()       # and bound it: @functools.lru_cache(maxsize=8)
%reset -f out
get_ipython().user_ns_hidden.update({"_": "", "__": "", "___": ""})
""", varies=True),
    md("""
`%reset -f out` alone is not enough: IPython keeps the last three outputs in `user_ns_hidden` too,
so the 16 MB frame would survive it. The leak detector keeps history: the fixed leaks are now
`resolved`.
"""),
    code("""
found = cgmem_nb.MEMORY_PROFILER.detect_leaks()
pd.DataFrame({"holder": [k.holder for k in found], "status": [k.status for k in found]})
""", varies=True),
    code("%memwatch off", varies=True),
]


SHRINK = [
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
v[["name", "type", "category", "held_by"]].assign(size=v["size_bytes"].map(format_bytes))
""", varies=True),
    md("""
## What to change

Each recommendation carries the code to paste. `estimated_savings` is measured: for a text column,
the bytes the column really frees when converted (its pointers plus each distinct string object
once) minus what the category needs.
"""),
    code("""
recs = %memrecs
recs[["priority", "rule", "target", "difficulty", "action"]].assign(saves=recs["estimated_savings"].map(format_bytes))
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


def build(name: str, cells: list[nbformat.NotebookNode]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, HERE / name)
    print("wrote", HERE / name)


if __name__ == "__main__":
    build("03-hunting-a-leak.ipynb", LEAK)
    build("04-shrinking-a-dataframe.ipynb", SHRINK)
