"""Build and execute ``notebooks/08-profiling-a-dask-cluster.ipynb`` (``.venv/bin/python notebooks/make_08_profiling_a_dask_cluster.py``).

Profiling a Dask cluster's memory from the notebook: per task, per worker, per line,
on a small ``LocalCluster`` of two worker processes. The shared machinery is in
``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [
    md(
        """
# Profiling a Dask cluster

When the data outgrows the kernel, the work goes to Dask workers, and so does the memory. Dask's
dashboard shows how much each worker holds, not which task or which line of *your* code holds it.
`%%memprofile --dask` profiles the cell in the kernel and, for the same span, on every worker, and
gives back one result. (Needs `pip install 'cgmem_nb[dask]'` on the kernel and the workers; see the
docs page *Profiling a Dask cluster* for a real cluster.)

A small cluster on this machine: two worker processes, one thread each, 600 MB each.
"""
    ),
    code(
        """
%load_ext cgmem_nb
import logging
import numpy as np
import pandas as pd
import distributed

logging.getLogger("distributed").setLevel(logging.ERROR)
cluster = distributed.LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, memory_limit="600MB", host="127.0.0.1",
    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
)
client = distributed.Client(cluster)
names = {address: f"worker {info['name']}" for address, info in client.scheduler_info()["workers"].items()}
print(len(names), "workers")
"""
    ),
    md(
        """
The pipeline: load four partitions of 40 MB each, widen the value column of each one (a 160 MB
temporary), and sum. The functions are defined here, in the notebook; Dask ships them to the workers.
"""
    ),
    code(
        """
ROWS = 2_500_000                      # 2 columns x 8 bytes x 2.5 M rows = 40 MB a partition

def load_part(i):
    rng = np.random.default_rng(i)
    return pd.DataFrame({"key": rng.integers(0, 100, ROWS), "value": rng.random(ROWS)})

def widen(part):
    wide = np.repeat(part["value"].to_numpy()[:, None], 8, axis=1)   # 160 MB (and a 20 MB working copy), dropped below
    return float(wide.sum())

def total(sums):
    return sum(sums)
"""
    ),
    code(
        """
%%memprofile --dask -o r -q
parts = client.map(load_part, range(4))
sums = client.map(widen, parts)
result = client.submit(total, sums).result()
"""
    ),
    md(
        """
`r.tasks` has one row per task: its key prefix (the name Dask's dashboard shows), the worker that
ran it, its peak and retained bytes (from the samples taken on its thread while it ran) and the size
of its result as Dask measured it. By prefix:
"""
    ),
    code(
        """
by_prefix = r.tasks.groupby("prefix").agg(
    tasks=("key", "size"), peak=("peak_bytes", "max"), retained=("retained_bytes", "max"), result=("result_bytes", "max"),
)
# what we planted, within 10%
assert abs(by_prefix.loc["load_part", "retained"] - 40e6) < 4e6        # each part keeps 40 MB: its result
assert abs(by_prefix.loc["load_part", "result"] - 40e6) < 4e6          # ... as Dask measured it
# the 160 MB temporary and np.repeat's 20 MB copy; where the worker hands a task its input still
# packed (seen on CPython 3.13), also the 40 MB copy that unpacks it on the task's first use
assert 162e6 < by_prefix.loc["widen", "peak"] < 220e6 + 18e6
assert by_prefix.loc["widen", "retained"] < 1e6                        # and nothing kept
print(by_prefix["tasks"].to_dict())
print("largest peak:", by_prefix["peak"].idxmax())
"""
    ),
    md(
        """
`r.lines` now says *where* each line ran: `kernel`, or a worker's address. The functions defined in
this notebook are named `In[n]:line` on the workers too, with their source:
"""
    ),
    code(
        """
on_workers = r.lines[r.lines["where"] != "kernel"]
top = on_workers.groupby(["location", "code"], as_index=False)["allocated_bytes"].sum()
top = top.sort_values("allocated_bytes", ascending=False).head(2)
assert 4 * 180e6 - 72e6 < top["allocated_bytes"].iloc[0] < 4 * 220e6 + 72e6   # widen's 180 (to 220) MB, in 4 tasks
for location, code_line in zip(top["location"], top["code"]):
    print(location, "|", code_line)
"""
    ),
    md(
        """
`r.workers` has one row per worker: its memory before, after and at its peak, the tracer that ran
there, the tasks it ran and how much of its peak they explain. `r.cluster_timeline` has each worker's memory over
time (four readings a second).
"""
    ),
    code(
        """
workers = r.workers.assign(name=r.workers["worker"].map(names)).set_index("name").sort_index()
assert (workers["rss_peak_bytes"] > workers["rss_before_bytes"] + 150e6).all()   # each ran a widen
assert workers["tasks"].sum() == 9 and (workers["explained"] > 0.8).all()
print(workers[["status", "tracer"]].to_string())
# how many readings depends on how long the cell ran (4 a second): every worker sent some
print("every worker sent readings:", set(r.cluster_timeline["worker"]) == set(r.workers["worker"]))
"""
    ),
    md("The report under a profiled cell (shown here with `display(r)`) adds the cluster: each worker's memory over time, the task prefixes by peak, the top lines on the workers."),
    code(
        """
display(r)
""",
        varies=True,
    ),
    md(
        """
## A worker that leaks

A task that keeps something on its worker (a cache, a global) makes that worker's *unmanaged* memory
(process memory minus the results Dask manages) grow from task to task. The profiler reports it as a
leak, named after the task prefix, in `r.leaks` and on the event stream (`LeakDetected` with `where`
the worker).
"""
    ),
    code(
        """
def remember(i):
    worker = distributed.get_worker()
    cache = worker.__dict__.setdefault("tutorial_cache", [])
    cache.append(np.ones(1_000_000))          # 8 MB kept on the worker, every call
    return len(cache)

first = next(address for address, name in names.items() if name == "worker 0")
"""
    ),
    code(
        """
%%memprofile --dask -o leaky -q
counts = [client.submit(remember, i, workers=[first], pure=False).result() for i in range(12)]
"""
    ),
    code(
        """
leak = leaky.leaks[leaky.leaks["holder_kind"] == "worker"].iloc[0]
assert abs(leak["growth"] - 88e6) < 30e6          # 11 steps of 8 MB
print(leak["holder"].replace(f"worker {first}", names[first]))
print(leak["fix"].splitlines()[-1].replace(first, "ADDRESS"))
"""
    ),
    code(
        """
client.run(lambda dask_worker: dask_worker.__dict__.pop("tutorial_cache", None) and None)
client.close()
cluster.close()
"""
    ),
]


if __name__ == "__main__":
    sys.exit(main("08-profiling-a-dask-cluster.ipynb", CELLS))
