"""Build and execute ``notebooks/03-hunting-a-leak.ipynb`` (``.venv/bin/python notebooks/make_03_hunting_a_leak.py``).

Hunting a leak with %memwatch, %memleaks and %memrecs. Cells that name output holders vary:
a kernel run by nbval keeps no output history (no ``Out[n]``), so the same frame is held by ``___`` there.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

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

hist = cgmem_nb.history()
hist
""", varies=True),
    md("""
The table reads in MB and seconds, but it is an ordinary DataFrame of bytes and Unix times
underneath (`hist["retained_bytes"].sum()` is bytes; `hist.raw` is the plain frame). The same
goes for `%memvars`, `%memleaks` and `%memrecs`.

`%memwatch on` stays cheap with gigabytes of frames in the namespace: a frame is sized once and
reused while it is unchanged, and the observations taken while a cell runs happen on a thread of
their own, so the live panel and the dashboard keep their samples.
"""),
    md("Every `score` cell keeps about 7 MB. Which objects?"),
    code("""
leaks = %memleaks
leaks
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
recs
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

if __name__ == "__main__":
    sys.exit(main("03-hunting-a-leak.ipynb", CELLS))
