"""The Python / native split on the page, in headless Chromium: the live panel in real JupyterLab
(the kernel turns the native hooks on) and the dashboard served by a real Bokeh server in a
process of its own with the hooks on. Both show a 200 MB Arrow result the test makes as native."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from harness import JupyterLabServer, open_notebook, run_cell, text_of

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
pytest.importorskip("pyarrow")

MB = 1000**2
TRUTH = 200 * MB  # 25,000,000 int64 in Arrow's pool
SPLIT = re.compile(r"Python / native: ([\d.,]+ [KMGT]?B) / ([\d.,]+) ([KMGT]?B) at the peak")


def _native_bytes(text: str) -> float:
    match = SPLIT.search(" ".join(text.split()))
    assert match, text
    unit = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[match.group(3)]
    return float(match.group(2).replace(",", "")) * unit


SETUP = """\
%load_ext cgmem_nb
from cgmem_nb import MEMORY_PROFILER
MEMORY_PROFILER.initialize(native_memory=True)  # on explicitly (whatever the default)
import numpy as np, pyarrow as pa, pyarrow.compute as pc
base = pa.array(np.arange(25_000_000, dtype=np.int64))
"""

ARROW = """\
%%memprofile --live -q
import time
big = pc.multiply(base, 2)
time.sleep(1.0)
"""


def test_live_panel_shows_the_native_split_after_an_arrow_cell(jupyterlab: JupyterLabServer, page: Page) -> None:
    jupyterlab.write_notebook("native_panel.ipynb", [SETUP, ARROW])
    open_notebook(page, jupyterlab, "native_panel.ipynb")
    run_cell(page, 0, wait=True)
    run_cell(page, 1, wait=True)
    page.wait_for_selector(".cgmem-panel-native", timeout=20_000)
    text = text_of(page, ".cgmem-panel-native")
    assert abs(_native_bytes(text) - TRUTH) <= 0.15 * TRUTH, text
    assert "[final]" in text_of(page, ".cgmem-panel-status")


SERVE = r"""
import sys, time
import numpy as np, pyarrow as pa, pyarrow.compute as pc
from cgmem_nb import MemoryDashboard, MemoryProfiler, ProfilerConfig
prof = MemoryProfiler(ProfilerConfig(native_memory=True))  # on explicitly (whatever the default)
dash = MemoryDashboard(prof, update_ms=200)
dash.start_server(port=0, quiet=True)
base = pa.array(np.arange(25_000_000, dtype=np.int64))
with prof.session("arrow-result"):
    big = pc.multiply(base, 2)
print(dash.url, flush=True)
sys.stdin.readline()  # serve until the test closes our stdin
dash.stop()
"""


def test_dashboard_header_shows_the_native_split_of_the_last_session(browser: Browser) -> None:
    env = dict(os.environ, MEMORY_PROFILER_NATIVE="1")
    server = subprocess.Popen([sys.executable, "-c", SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None and server.stdin is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector(".cgmem-native", timeout=30_000)
            text = page.locator(".cgmem-native").first.inner_text()
            assert "arrow-result" in text
            assert abs(_native_bytes(text) - TRUTH) <= 0.15 * TRUTH, text
        finally:
            context.close()
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
