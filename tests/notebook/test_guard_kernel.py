"""The memory guard through a real kernel: the cell is interrupted, the kernel and variables survive."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.notebook

SETUP = """\
%load_ext cgmem_nb
from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.engine import probes
import time
before = list(range(1000))  # an earlier variable that must survive
MEMORY_PROFILER.initialize(memory_limit_bytes=probes.rss() + 300_000_000)
"""

GREEDY = """\
%%memprofile --guard -q
chunks = []
for i in range(400):  # up to 2 GB if nothing stops it
    chunks.append(b"x" * 5_000_000)
    time.sleep(0.005)
"""

AFTER = """\
import dataclasses, json
r = MEMORY_PROFILER.last_result
g = r.summary.guard
top = r.lines.iloc[0]
print(json.dumps({
    "before_ok": before == list(range(1000)),
    "chunks": len(chunks),
    "triggered": r.summary.guard_triggered,
    "interrupted": r.summary.interrupted,
    "guard_cell": g.cell,
    "guard_top": dataclasses.asdict(g.top_lines[0]),
    "top_location": top.location,
    "top_code": top.code,
    "top_peak": int(top.peak_bytes),
    "limit": r.summary.limit_bytes,
    "rss_at_trigger": g.rss_bytes,
    "method": g.method,
}))
"""


def test_guard_interrupts_a_greedy_cell_and_the_kernel_keeps_its_variables() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in (SETUP, GREEDY, AFTER)]
    client = NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True)
    client.execute()
    greedy_out = nb.cells[1].outputs
    errors = [o for o in greedy_out if o.output_type == "error"]
    assert errors and errors[0].ename == "KeyboardInterrupt", greedy_out
    after = nb.cells[2].outputs
    assert not [o for o in after if o.output_type == "error"], after
    data = json.loads("".join(o.text for o in after if o.output_type == "stream" and o.name == "stdout"))
    assert data["before_ok"] and data["triggered"] and data["interrupted"]
    # stopped well before the 400 iterations (2 GB): near the 300 MB headroom
    assert 30 <= data["chunks"] < 120, data
    assert data["guard_cell"] == 2
    assert data["guard_top"]["location"] == "In[2]:4", data
    assert data["guard_top"]["code"] == 'chunks.append(b"x" * 5_000_000)'
    assert data["top_location"] == "In[2]:4" and data["top_code"] == data["guard_top"]["code"]
    assert data["top_peak"] >= 0.8 * data["chunks"] * 5_000_000
    assert data["rss_at_trigger"] >= 0.95 * data["limit"]
    assert data["method"] == "signal"
