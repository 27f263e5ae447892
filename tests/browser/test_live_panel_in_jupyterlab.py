"""The live panel in real JupyterLab: it moves while a ``%%memprofile --live`` cell runs.

A cell appends a 10 MB block every 0.3 s for 6 s. While its prompt shows
``[*]``, the chart's data source on the page gains points and the panel's
figures / pressure text change between two readings 2 s apart; after the cell
ends the panel shows the final traced peak of the cell's ProfileResult.
"""

from __future__ import annotations

import os
import re
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
    text_of,
    wait_for_cell_done,
    wait_for_cell_running,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SETUP = """\
%load_ext cgmem_nb
from cgmem_nb import MEMORY_PROFILER, format_bytes
from cgmem_nb.engine import probes
# A limit just above what the kernel uses now, so the pressure level moves visibly.
MEMORY_PROFILER.initialize(memory_limit_bytes=probes.rss() + 300_000_000)
"""

BUSY = """\
%%memprofile --live -q
import time
import numpy as np
blocks = []
for _ in range(20):
    blocks.append(np.ones(1_250_000))  # 10 MB
    time.sleep(0.3)  # 6 s in all: time for the page to render the panel, then two readings 2 s apart
"""

CHECK = """\
print("traced peak:", format_bytes(MEMORY_PROFILER.last_result.summary.peak_bytes))
"""

STATUS = ".cgmem-panel-status"
SOURCE = "cgmem_timeline"


def _rows(page: Page) -> int:
    rows = [s["length"] for s in bokeh_sources(page) if s["name"] == SOURCE]
    assert rows, f"the panel's data source {SOURCE!r} is not in window.Bokeh.documents"
    return int(rows[-1])


def test_live_panel_moves_while_the_cell_runs_and_shows_the_final_peak(
    jupyterlab: JupyterLabServer, page: Page
) -> None:
    jupyterlab.write_notebook("live_panel.ipynb", [SETUP, BUSY, CHECK])
    open_notebook(page, jupyterlab, "live_panel.ipynb")
    run_cell(page, 0, wait=True)

    run_cell(page, 1)
    wait_for_cell_running(page, 1)
    page.wait_for_selector(STATUS, timeout=30_000)
    page.wait_for_function(
        "(name) => window.Bokeh && window.Bokeh.documents && window.Bokeh.documents.some("
        "d => [...d.all_models].some(m => m.name === name && m.get_length && m.get_length() > 1))",
        arg=SOURCE,
        timeout=15_000,
    )
    first_text, first_rows = text_of(page, STATUS), _rows(page)
    time.sleep(2.0)
    second_text, second_rows = text_of(page, STATUS), _rows(page)
    still_running = cell_is_running(page, 1)

    assert still_running, "the busy cell finished before the second reading; the test proves nothing"
    assert "Could not create a view" not in cell_output_text(page, 1)
    assert "[live]" in first_text, first_text
    assert second_rows > first_rows, f"chart source did not grow while the cell ran: {first_rows} -> {second_rows}"
    assert first_text != second_text, f"panel text did not change while the cell ran: {first_text!r}"
    pressure = re.compile(r"pressure \w+ \((\d+)%\)")
    p1, p2 = pressure.search(first_text), pressure.search(second_text)
    assert p1 and p2 and int(p2.group(1)) > int(p1.group(1)), (first_text, second_text)

    wait_for_cell_done(page, 1, timeout=30)
    page.wait_for_function(
        "(sel) => { const e = document.querySelector(sel); return e && e.innerText.includes('[final]'); }",
        arg=STATUS,
        timeout=10_000,
    )
    # The final picture (for nbconvert and GitHub) is in the cell's outputs, hidden next to the
    # live widget; the BokehJS output is emptied and the widget still draws.
    page.wait_for_selector(".cgmem-static-panel", state="attached", timeout=10_000)
    assert not page.locator(".cgmem-static-panel").first.is_visible()
    assert page.locator(".cgmem-panel-chart").first.is_visible()
    assert "Could not create a view" not in cell_output_text(page, 1)
    if os.environ.get("CGMEM_SCREENSHOTS"):
        page.screenshot(path=os.path.join(os.environ["CGMEM_SCREENSHOTS"], "live_panel_final.png"), full_page=True)
    run_cell(page, 2, wait=True)
    match = re.search(r"traced peak: ([\d.]+ [KMGT]?B)", cell_output_text(page, 2))
    assert match, cell_output_text(page, 2)
    final_text = text_of(page, STATUS)
    assert f"traced peak {match.group(1)}" in " ".join(final_text.split()), final_text
    peak_mb = float(match.group(1).split()[0]) * (1000 if match.group(1).endswith("GB") else 1)
    assert peak_mb >= 190, f"20 blocks of 10 MB were kept; the panel says {match.group(1)}"
