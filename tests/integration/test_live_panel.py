"""The live panel in a fresh IPython shell: widget state follows the event stream."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MemoryProfiler, ProfileResult, ProfilerConfig
from cgmem_nb.engine import probes
from cgmem_nb.engine.events import LeakDetected, PressureLevel, RecommendationGenerated, Sample
from cgmem_nb.schema import Difficulty, LeakImpact, MemoryLeak, Recommendation
from cgmem_nb.engine.monitor import MONITOR
from cgmem_nb.outputs import panel as panel_module
from cgmem_nb.outputs.charts import DASHBOARD, PANEL, ChartContext, TimelineChart
from cgmem_nb.outputs.feed import LiveFeed
from cgmem_nb.outputs.panel import LEVEL_COLORS, PANEL_TEXT, LivePanel
from cgmem_nb.units import format_bytes

pytestmark = pytest.mark.integration
MB = 1000**2


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LivePanel]]:
    """Every LivePanel shown during the test (the magics create them)."""
    panels: list[LivePanel] = []
    original = LivePanel.show

    def show(self: LivePanel) -> LivePanel:
        panels.append(self)
        return original(self)

    monkeypatch.setattr(LivePanel, "show", show)
    yield panels


def _sample(clock: FakeClock, dt: float, rss: int, traced: int | None = None) -> Sample:
    clock.now += dt
    return Sample(t_s=0.0, rss_bytes=rss, traced_bytes=traced, timestamp=clock.now)


LEAK = MemoryLeak(
    leak_id="variable:cache", holder="cache", holder_kind="variable", category="Cache", size=12 * MB, growth=12 * MB,
    growth_rate=1e6, age=12.0, first_seen=0.0, last_seen=1.0, first_cell=1, last_cell=3, observations=3,
    status="growing", estimated_impact=LeakImpact.HIGH, time_to_limit=None, reason="list `cache` keeps growing",
    fix="cache.clear()",
)
REC = Recommendation(
    priority=1, rule="downcast_numbers", target="df.x", description="use float32 for column x",
    action='df["x"] = df["x"].astype("float32")', estimated_savings=4 * MB, savings_error=0, measured=True,
    difficulty=Difficulty.Easy,
)


def test_panel_widgets_follow_samples_pressure_and_findings(clock: FakeClock) -> None:
    profiler = MemoryProfiler(ProfilerConfig(memory_limit_bytes=400 * MB))
    panel = LivePanel("In[1]", profiler=profiler, clock=clock, max_rate=4)
    assert "none yet" in panel.leaks_html.value and "none yet" in panel.recs_html.value
    timeline = panel.timeline
    assert timeline is not None
    rows0 = len(timeline.source.data["t"])
    assert rows0 == 1  # seeded: BokehJS can set its initial ranges

    # Ticks every 0.1 s: redraws are throttled to 4 per second, each streams all pending rows.
    for i in range(10):
        panel.handle(_sample(clock, 0.1, 200 * MB + i * 10 * MB, 50 * MB + i * MB))
    assert panel.redraws in (3, 4)
    panel.flush()
    assert len(timeline.source.data["t"]) == rows0 + 10
    assert timeline.source.data["rss_mb"][-1] == pytest.approx(290.0)
    assert timeline.source.data["traced_mb"][-1] == pytest.approx(59.0)
    assert timeline.source.data["limit_mb"][-1] == pytest.approx(400.0)
    assert format_bytes(290 * MB) in panel.status.value and format_bytes(59 * MB) in panel.status.value
    assert panel.level is PressureLevel.MEDIUM  # 290 of 400 MB: 72%, past the 70% threshold

    # The house's one pressure policy: HIGH from 85% of the limit, left only below 85% - 2%.
    before = panel.status.value
    panel.handle(_sample(clock, 0.1, 345 * MB))
    panel.flush()
    assert panel.level is PressureLevel.HIGH
    assert "High" in panel.status.value and LEVEL_COLORS[PressureLevel.HIGH] in panel.status.value
    assert panel.status.value != before
    panel.handle(_sample(clock, 0.1, 335 * MB))  # 83.75%: inside the hysteresis band, still HIGH
    panel.flush()
    assert panel.level is PressureLevel.HIGH
    panel.handle(_sample(clock, 0.1, 300 * MB))
    panel.flush()
    assert panel.level is PressureLevel.MEDIUM

    panel.handle(LeakDetected(LEAK))
    panel.handle(RecommendationGenerated(REC))
    panel.flush()
    assert "none yet" not in panel.leaks_html.value and "cache" in panel.leaks_html.value
    assert format_bytes(12 * MB) in panel.leaks_html.value
    assert "float32" in panel.recs_html.value


def test_the_panel_follows_a_changed_limit(clock: FakeClock) -> None:
    profiler = MemoryProfiler(ProfilerConfig(memory_limit_bytes=4000 * MB))
    panel = LivePanel("limit", profiler=profiler, clock=clock)
    profiler.initialize(memory_limit_bytes=400 * MB)
    panel.feed.refresh_limit()  # samples read the limit at most once a second
    panel.handle(_sample(clock, 0.1, 390 * MB))
    panel.flush()
    timeline = panel.timeline
    assert timeline is not None
    assert panel.limit_bytes == 400 * MB and timeline.source.data["limit_mb"][-1] == pytest.approx(400.0)
    assert panel.level is PressureLevel.CRITICAL and format_bytes(400 * MB) in panel.status.value
    assert "400 MB" in timeline.figure.title.text and timeline.limit_in_range


@pytest.mark.parametrize("view", [PANEL, DASHBOARD])
def test_the_critical_line_is_the_pressure_policys_threshold_not_the_guards(view: str) -> None:
    profiler = MemoryProfiler(ProfilerConfig(memory_limit_bytes=1000 * MB, guard_fraction=0.6))
    feed = LiveFeed(profiler)
    feed.handle(Sample(t_s=0.0, rss_bytes=100 * MB, timestamp=time.time()))
    chart = TimelineChart(ChartContext(view, t0=time.time(), limit_bytes=1000 * MB))  # type: ignore[arg-type]
    chart.update(feed.read())
    assert chart.source.data["critical_mb"] == [pytest.approx(950.0)]  # CRITICAL starts at 95%, whatever the guard
    assert chart.source.data["limit_mb"] == [pytest.approx(1000.0)]
    labels = {item.label.value for item in chart.figure.legend[0].items}
    assert "Critical (95% of limit)" in labels and "limit" in labels


def test_gap_without_samples_is_filled_from_the_kernel_peak_and_marked(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    hwm = {"value": 400 * MB}
    monkeypatch.setattr(probes.KERNEL_PEAK, "read", lambda: hwm["value"])
    panel = LivePanel("gap", clock=clock)
    panel.handle(_sample(clock, 0.1, 300 * MB))
    panel.handle(_sample(clock, 0.1, 300 * MB))
    hwm["value"] = 900 * MB  # a C call holding the GIL peaked at 900 MB and freed it
    panel.handle(_sample(clock, 3.0, 310 * MB))
    panel.flush()
    timeline = panel.timeline
    assert timeline is not None
    assert len(panel.gaps) == 1
    t0, t1, drawn, from_peak = panel.gaps[0]
    assert from_peak and drawn == 900 * MB and t1 - t0 == pytest.approx(3.0)
    assert timeline.gaps.data["rss_mb"] == [pytest.approx(900.0)]
    assert pytest.approx(900.0) in timeline.source.data["rss_mb"]  # the line reaches the filled peak
    assert panel.peak_bytes == 900 * MB and format_bytes(900 * MB) in panel.status.value

    # A gap during which the kernel peak did not grow is marked, but not filled with a peak.
    panel.handle(_sample(clock, 2.0, 305 * MB))
    panel.flush()
    assert len(panel.gaps) == 2 and panel.gaps[1][2:] == (310 * MB, False)


def test_text_form_is_stable_without_a_widget_front_end(clock: FakeClock) -> None:
    a, b = LivePanel("a", clock=clock), LivePanel("b", clock=clock)
    assert repr(a) == repr(b) == PANEL_TEXT
    assert a._repr_mimebundle_() == {"text/plain": PANEL_TEXT}  # no kernel here: no widget view
    assert not panel_module.has_widget_frontend()


def test_live_magic_panel_moves_while_the_cell_runs_and_ends_with_the_result(
    shell: InteractiveShell, shown: list[LivePanel]
) -> None:
    shell.user_ns["panels"] = shown
    cell = """%%memprofile --live -q -o r
import time
import numpy as np
blocks = []
def read():
    p = panels[0]
    return p.status.value, len(p.timeline.source.data["t"]), p.current_bytes
for _ in range(4):
    blocks.append(np.ones(5_000_000))   # 40 MB each
    time.sleep(0.15)
first = read()
for _ in range(4):
    blocks.append(np.ones(5_000_000))
    time.sleep(0.15)
time.sleep(0.3)
second = read()
"""
    res = shell.run_cell(cell, store_history=True)
    assert res.error_in_exec is None
    assert len(shown) == 1
    panel = shown[0]
    ns = shell.user_ns
    (text1, rows1, cur1), (text2, rows2, cur2) = ns["first"], ns["second"]
    assert rows2 > rows1 > 1, (rows1, rows2)
    assert text1 != text2
    assert cur2 - cur1 >= 120 * MB  # 4 more blocks of 40 MB between the readings
    r: ProfileResult = ns["r"]
    assert r.summary.peak_bytes >= 300 * MB
    assert panel.final is r and "[final]" in panel.status.value
    assert panel.peak_bytes >= r.summary.rss_peak_bytes
    assert format_bytes(panel.peak_bytes) in panel.status.value
    assert format_bytes(r.summary.peak_bytes) in panel.status.value  # traced peak of the result


def test_mempanel_follows_every_cell_until_closed(shell: InteractiveShell, shown: list[LivePanel]) -> None:
    shell.run_cell("%mempanel", store_history=True)
    assert len(shown) == 1 and MONITOR.running
    panel = shown[0]
    try:
        res = shell.run_cell("import numpy as np\nkept = np.ones(6_250_000)  # 50 MB\nimport time; time.sleep(0.4)", store_history=True)
        assert res.error_in_exec is None
        assert panel.cell_notes and panel.cell_notes[-1].startswith(f"In[{res.execution_count}]")
        assert len(panel.timeline.source.data["t"]) > 1
        assert "In[" in panel.status.value
    finally:
        shell.run_cell("%mempanel --close", store_history=True)
    assert panel.closed and "[closed]" in panel.status.value
    deadline = time.monotonic() + 2
    while MONITOR.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not MONITOR.running


class _TracedShare:
    """The architecture page's example chart: the traced heap as a share of RSS."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.models import ColumnDataSource
        from bokeh.plotting import figure

        self.ctx = ctx
        self.source = ColumnDataSource({"t": [], "share": []}, name="cgmem_traced_share")
        self.model = figure(height=120)
        self.model.line("t", "share", source=self.source)

    def update(self, update: Any) -> None:
        rows = [s for s in update.samples if s.traced_bytes is not None]
        if rows:
            self.source.stream({"t": [self.ctx.x(s.wall) for s in rows], "share": [s.traced_bytes / s.rss_bytes for s in rows]})


def test_one_registry_entry_adds_a_chart_to_the_panel_and_the_dashboard(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bokeh.document import Document

    from cgmem_nb.outputs import charts
    from cgmem_nb.outputs.dashboard import page

    monkeypatch.setattr(charts, "CHARTS", (*charts.CHARTS, charts.ChartSpec("traced_share", _TracedShare, charts.BOTH)))
    panel = LivePanel("share", clock=clock)
    panel.handle(_sample(clock, 0.1, 400 * MB, 100 * MB))
    panel.flush()
    (mine,) = [c for c in panel.charts if isinstance(c, _TracedShare)]
    assert mine.source.data["share"] == [pytest.approx(0.25)]

    feed = LiveFeed(MemoryProfiler(ProfilerConfig()))
    feed.handle(Sample(t_s=0.0, rss_bytes=400 * MB, traced_bytes=200 * MB, timestamp=time.time()))
    doc = Document()
    page.build_page(doc, feed, rollover=100, update_ms=250, pages=lambda: 1)
    source = doc.get_model_by_name("cgmem_traced_share")
    assert source is not None and list(source.data["share"]) == [pytest.approx(0.5)]
    assert doc.get_model_by_name("cgmem_timeline") is not None  # the registered charts are all there


def test_live_views_refuse_when_real_time_monitoring_is_off(clock: FakeClock) -> None:
    from cgmem_nb import ConfigError
    from cgmem_nb.outputs.dashboard import MemoryDashboard

    quiet = MemoryProfiler(ProfilerConfig(real_time_monitoring=False))
    with pytest.raises(ConfigError, match="real_time_monitoring"):
        LivePanel("off", profiler=quiet, clock=clock).start()
    dash = MemoryDashboard(quiet)
    with pytest.raises(ConfigError, match="real_time_monitoring"):
        dash.start_server(port=0, quiet=True)
    assert not dash.running and not MONITOR.running
