"""The dashboard in headless Debian Chromium: live charts at phone and desktop widths, sessions cleaned up."""

from __future__ import annotations

import dataclasses
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig
from cgmem_nb.engine import probes
from cgmem_nb.outputs.dashboard import MemoryDashboard

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

READ_TIMELINE = """() => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const doc of docs) {
    const src = doc.get_model_by_name('cgmem_timeline');
    if (src) { const t = src.data.t; return {n: t.length, last: t.length ? t[t.length - 1] : null}; }
  }
  return null;
}"""


READ_MARKERS = """() => {
  for (const doc of window.Bokeh.documents) {
    const src = doc.get_model_by_name('cgmem_markers');
    if (src) { return {labels: Array.from(src.data.label), kinds: Array.from(src.data.kind)}; }
  }
  return null;
}"""


@pytest.fixture
def chromium(browser: Browser) -> Browser:
    """The session's shared headless Chromium (see conftest.py): one Playwright per run."""
    return browser


@pytest.fixture
def dash() -> Iterator[MemoryDashboard]:
    d = MemoryDashboard(MemoryProfiler(ProfilerConfig()), unused_session_lifetime_ms=1000)
    d.start_server(port=0, quiet=True)
    try:
        yield d
    finally:
        d.stop()


def _keep_evidence(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _open(browser: Browser, url: str, width: int) -> tuple[Any, Page]:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function(f"({READ_TIMELINE})() !== null && ({READ_TIMELINE})().n > 0", timeout=20_000)
    return context, page


@pytest.mark.parametrize("width", [390, 1280])
def test_charts_receive_new_points_while_open(chromium: Browser, dash: MemoryDashboard, width: int) -> None:
    context, page = _open(chromium, dash.url or "", width)
    try:
        first = page.evaluate(READ_TIMELINE)
        with dash.profiler.session("marked"):  # its start and end get marked on the timeline
            time.sleep(0.3)
        time.sleep(1.7)
        second = page.evaluate(READ_TIMELINE)
        marks = page.evaluate(READ_MARKERS)
        assert marks["labels"].count("marked") == 2, marks
        # 4 samples a second: at least 2 a second must have reached the page
        assert second["n"] >= first["n"] + 4, (first, second)
        assert second["last"] > first["last"] + 1000, (first, second)
        # the layout fits the viewport: no horizontal scrolling on a phone or a desktop
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"page is {overflow}px wider than the {width}px viewport"
        assert page.get_by_text("pressure").count() >= 1
        if os.environ.get("CGMEM_KEEP_SCREENSHOTS"):
            _keep_evidence(page, f"dashboard-{width}px")
    except BaseException:
        _keep_evidence(page, f"dashboard-{width}px-failure")
        raise
    finally:
        context.close()


def test_five_sessions_open_and_close_without_leftovers(chromium: Browser, dash: MemoryDashboard) -> None:
    rss_before = probes.rss()
    contexts = [chromium.new_context(viewport={"width": 800, "height": 900}) for _ in range(5)]
    try:
        pages = [c.new_page() for c in contexts]
        for page in pages:  # all five load at once
            page.goto(dash.url or "", wait_until="commit")
        for page in pages:
            page.wait_for_function(f"({READ_TIMELINE})() !== null && ({READ_TIMELINE})().n > 0", timeout=30_000)
        assert dash.open_sessions == 5
    finally:
        for context in contexts:
            context.close()
    deadline = time.monotonic() + 15
    while dash.open_sessions and time.monotonic() < deadline:
        time.sleep(0.2)
    assert dash.open_sessions == 0, "documents of closed pages were not cleaned up"
    growth = probes.rss() - rss_before
    print(f"\n5 browser sessions: server RSS grew {growth} bytes")
    assert growth < 60_000_000, f"server grew by {growth} bytes over 5 sessions"


READ_PHONE = """() => {
  const meta = document.querySelector('meta[name="viewport"]');
  const docs = window.Bokeh.documents;
  let rss = [], yEnd = null, leaks = null, title = null, header = '';
  for (const doc of docs) {
    const src = doc.get_model_by_name('cgmem_timeline');
    if (src) { rss = Array.from(src.data.rss_mb); }
    const table = doc.get_model_by_name('cgmem_leaks');
    if (table) { leaks = {holder: Array.from(table.data.holder), size: Array.from(table.data.size),
                          seen: Array.from(table.data['last seen'])}; }
    for (const m of doc.all_models) {
      if (m.title && m.title.text && m.title.text.startsWith('Memory (MB)')) { yEnd = m.y_range.end; title = m.title.text; }
      if (typeof m.text === 'string' && m.text.includes('current (RSS)')) { header = m.text; }
    }
  }
  return {meta: meta ? meta.content : null, inner: window.innerWidth,
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          rss: rss, yEnd: yEnd, leaks: leaks, title: title, header: header};
}"""


def test_on_a_phone_the_dashboard_lays_out_at_its_width_with_a_fitted_axis_and_a_clean_leak_table(
    chromium: Browser, dash: MemoryDashboard
) -> None:
    from cgmem_nb import EVENT_BUS, LeakDetected
    from cgmem_nb.schema import LeakImpact, MemoryLeak

    now = time.time()
    leak = MemoryLeak(
        leak_id="variable:copies", holder="copies", holder_kind="variable", category="DataFrame", size=1_133_269_194,
        growth=760_000_000, growth_rate=2e6, age=300.0, first_seen=now - 300, last_seen=now, first_cell=4, last_cell=9,
        observations=6, status="held", estimated_impact=LeakImpact.HIGH, time_to_limit=None,
        reason="list `copies` grew by 2 large steps", fix="copies.clear()",
    )
    # The same leak seen three times (it grew): one row, its latest size.
    for size in (400_000_000, 800_000_000, leak.size):
        EVENT_BUS.publish(LeakDetected(dataclasses.replace(leak, size=size)))
    # A phone: mobile emulation, as a 390 px wide iPhone-class screen at 3x.
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, device_scale_factor=3)
    page = context.new_page()
    try:
        page.goto(dash.url or "")
        page.wait_for_function(f"({READ_TIMELINE})() !== null && ({READ_TIMELINE})().n > 4", timeout=20_000)
        page.wait_for_function(f"(({READ_PHONE})().leaks || {{holder: []}}).holder.length > 0", timeout=10_000)
        time.sleep(0.5)  # a redraw after the first data: the axis has its computed range
        seen = page.evaluate(READ_PHONE)
        assert seen["meta"] == "width=device-width, initial-scale=1"
        # Without the meta tag a mobile browser lays the page out at 980 px and shrinks it.
        assert seen["inner"] == 390, seen["inner"]
        assert seen["overflow"] <= 1, f"page is {seen['overflow']}px wider than the phone"
        # The y axis fits the RSS line, not the machine's 25 GB physical limit.
        top = max(seen["rss"])
        assert seen["yEnd"] is not None and top <= seen["yEnd"] <= 1.5 * top, (seen["yEnd"], top, seen["title"])
        # The leak table: one row for the leak, its size readable, no epoch or byte count.
        assert seen["leaks"]["holder"] == ["copies"], seen["leaks"]
        assert seen["leaks"]["size"] == ["1.1 GB"]
        assert seen["leaks"]["seen"] == ["In[9]"]
        assert "1133269194" not in str(seen["leaks"]) and str(int(now)) not in str(seen["leaks"])
        # The peak card says since when it counts (the dashboard's start; a cell's start once one runs).
        assert re.search(r"peak since \d\d:\d\d:\d\d", seen["header"]), seen["header"][:500]
        if os.environ.get("CGMEM_KEEP_SCREENSHOTS"):
            _keep_evidence(page, "dashboard-phone-390px")
    except BaseException:
        _keep_evidence(page, "dashboard-phone-390px-failure")
        raise
    finally:
        context.close()
