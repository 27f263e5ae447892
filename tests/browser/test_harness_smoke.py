"""Smoke test of the browser harness: updates from a kernel thread reach JupyterLab while a cell runs.

This is the mechanism the live panel depends on: a daemon thread in the kernel
sets an ipywidgets trait and streams into a Bokeh ``ColumnDataSource`` shown
through ``jupyter_bokeh.BokehModel``, while the cell that started it is still
busy (``time.sleep``). The page must change between two readings taken while
the prompt shows ``[*]``.
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
    kernel_status,
    open_notebook,
    run_cell,
    text_of,
    wait_for_cell_done,
    wait_for_cell_running,
    wait_for_kernel_idle,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SETUP = """\
import threading, time
import ipywidgets as widgets
from bokeh.io import output_notebook
from bokeh.models import ColumnDataSource
from bokeh.plotting import figure
from bokeh.resources import INLINE
from jupyter_bokeh import BokehModel
output_notebook(INLINE, hide_banner=True)  # BokehJS inline: the CDN is unreachable offline
"""

SHOW = """\
label = widgets.HTML(value="tick 0")
label.add_class("cgmem-probe")
source = ColumnDataSource(data=dict(x=[0], y=[0]), name="cgmem_probe_source")
fig = figure(height=200, width=400)
fig.line("x", "y", source=source)
widgets.VBox([label, BokehModel(fig)])
"""

BUSY = """\
stop = threading.Event()
def pump():
    i = 0
    while not stop.is_set():
        i += 1
        label.value = f"tick {i}"
        source.stream(dict(x=[i], y=[i % 7]))
        time.sleep(0.2)
threading.Thread(target=pump, daemon=True).start()
time.sleep(4)
stop.set()
"""


KERNEL_BUSY = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'busy';
}"""


def _probe_rows(page: Page) -> int:
    rows = [s["length"] for s in bokeh_sources(page) if s["name"] == "cgmem_probe_source"]
    assert rows, "the streamed ColumnDataSource is not in window.Bokeh.documents"
    return int(rows[0])


def test_thread_updates_reach_the_page_while_the_cell_runs(jupyterlab: JupyterLabServer, page: Page) -> None:
    jupyterlab.write_notebook("smoke.ipynb", [SETUP, SHOW, BUSY])
    open_notebook(page, jupyterlab, "smoke.ipynb")
    # open_notebook saw the kernel idle, but JupyterLab's own requests (kernel info, comm info)
    # may make it busy again for a moment on a loaded machine: wait rather than read once
    wait_for_kernel_idle(page)

    run_cell(page, 0, wait=True)
    run_cell(page, 1, wait=True)
    page.wait_for_selector(".cgmem-probe", timeout=30_000)
    page.wait_for_function(
        "() => window.Bokeh && window.Bokeh.documents && window.Bokeh.documents.length > 0", timeout=30_000
    )
    assert "Could not create a view" not in cell_output_text(page, 1)

    run_cell(page, 2)
    wait_for_cell_running(page, 2)
    page.wait_for_function(KERNEL_BUSY, timeout=10_000)
    assert kernel_status(page) == "busy", "the cell sleeps for 4 s: the kernel must read as busy"
    page.wait_for_function(
        "() => { const e = document.querySelector('.cgmem-probe'); return e && e.innerText.trim() !== 'tick 0'; }",
        timeout=10_000,
    )
    first_text, first_rows = text_of(page, ".cgmem-probe"), _probe_rows(page)
    time.sleep(1.5)
    second_text, second_rows = text_of(page, ".cgmem-probe"), _probe_rows(page)
    still_running = cell_is_running(page, 2)

    assert still_running, "the busy cell finished before the second reading; the test proves nothing"
    assert first_text != second_text, f"widget text did not change while the cell ran: {first_text!r}"
    assert second_rows > first_rows, f"Bokeh source did not grow while the cell ran: {first_rows} -> {second_rows}"

    prompt = wait_for_cell_done(page, 2, timeout=30)
    assert prompt.startswith("[3]"), prompt
