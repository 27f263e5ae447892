"""``%%memprofile --dask --live`` in real JupyterLab: the panel draws the cluster while the cell runs.

The kernel starts a ``LocalCluster`` of two worker processes. A profiled cell runs
16 tasks of 0.4 s each that hold 20 MB while they run. While its prompt shows
``[*]``, the panel's per-worker memory sources on the page gain points and the
task prefix chart fills in; after the cell ends the top lines table holds the
task's line with a worker's address.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from harness import (
    JupyterLabServer,
    bokeh_sources,
    cell_is_running,
    cell_output_text,
    open_notebook,
    run_cell,
    wait_for_cell_done,
    wait_for_cell_running,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytest.importorskip("distributed")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

SETUP = """\
%load_ext cgmem_nb
import logging, time
import numpy as np
import distributed
logging.getLogger("distributed").setLevel(logging.ERROR)
cluster = distributed.LocalCluster(
    n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
    dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
)
client = distributed.Client(cluster)

def hold_a_while(i):
    block = np.ones(2_500_000)   # 20 MB while the task runs
    time.sleep(0.4)
    return float(block[0])
"""

BUSY = """\
%%memprofile --dask --live -q
total = sum(client.gather(client.map(hold_a_while, range(16))))
"""

CHECK = """\
print("workers:", sorted(set(MEMORY_PROFILER.last_result.lines["where"]) - {"kernel"}))
"""

CLOSE = """\
client.close()
cluster.close()
"""


def _lengths(page: Page, prefix: str) -> dict[str, int]:
    return {s["name"]: int(s["length"]) for s in bokeh_sources(page) if str(s["name"] or "").startswith(prefix)}


def test_the_live_panel_draws_each_worker_and_the_task_prefixes_while_the_cell_runs(
    jupyterlab: JupyterLabServer, page: Page
) -> None:
    jupyterlab.write_notebook("dask_live.ipynb", [SETUP + "from cgmem_nb import MEMORY_PROFILER\n", BUSY, CHECK, CLOSE])
    open_notebook(page, jupyterlab, "dask_live.ipynb")
    try:
        run_cell(page, 0, wait=True, timeout=90)
        run_cell(page, 1)
        wait_for_cell_running(page, 1)
        page.wait_for_function(
            "() => window.Bokeh && window.Bokeh.documents && window.Bokeh.documents.some("
            "d => [...d.all_models].some(m => m.name === 'cgmem_worker_memory_1' && m.get_length && m.get_length() > 1))",
            timeout=30_000,
        )
        first = _lengths(page, "cgmem_worker_memory_")
        time.sleep(1.0)
        second = _lengths(page, "cgmem_worker_memory_")
        prefixes = _lengths(page, "cgmem_task_prefixes")
        still_running = cell_is_running(page, 1)

        assert still_running, "the cell finished before the second reading; the test proves nothing"
        assert "Could not create a view" not in cell_output_text(page, 1)
        assert second["cgmem_worker_memory_0"] > first["cgmem_worker_memory_0"], (first, second)
        assert second["cgmem_worker_memory_1"] > first["cgmem_worker_memory_1"], (first, second)
        assert second.get("cgmem_worker_memory_2", 0) == 0, "only two workers"
        assert prefixes.get("cgmem_task_prefixes", 0) == 1, prefixes  # one prefix: hold_a_while

        wait_for_cell_done(page, 1, timeout=60)
        page.wait_for_function(
            "() => window.Bokeh.documents.some(d => [...d.all_models].some("
            "m => m.name === 'cgmem_cluster_lines' && m.get_length && m.get_length() > 0))",
            timeout=15_000,
        )
        run_cell(page, 2, wait=True)
        workers = cell_output_text(page, 2)
        assert workers.count("tcp://127.0.0.1:") == 2, workers
    finally:
        run_cell(page, 3, wait=True)
