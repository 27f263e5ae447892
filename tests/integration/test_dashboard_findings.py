"""Leaks and recommendations reach the dashboard's live feed from the analysis polls and the event bus."""

from __future__ import annotations

import dataclasses
import time
import urllib.request

import pytest

from cgmem_nb import EVENT_BUS, LeakDetected, MemoryDashboard, MemoryProfiler, ProfilerConfig, export
from cgmem_nb.schema import Difficulty, LeakImpact, MemoryLeak, Recommendation

pytestmark = pytest.mark.integration


LEAK = MemoryLeak(
    leak_id="L1", holder="cache", holder_kind="variable", category="Cache", size=12_000_000, growth=12_000_000,
    growth_rate=1e6, age=12.0, first_seen=time.time() - 12, last_seen=time.time(), first_cell=1, last_cell=3,
    observations=3, status="growing", estimated_impact=LeakImpact.HIGH, time_to_limit=None, reason="grows every cell",
    fix="cache.clear()",
)
REC = Recommendation(
    priority=1, rule="downcast_numbers", target="df.x", description="use float32", action="df = df.astype('float32')",
    estimated_savings=4_000_000, savings_error=0, measured=True, difficulty=Difficulty.Easy,
)


class AnalysingProfiler(MemoryProfiler):
    """A profiler whose analysis finds one leak and one recommendation (planted)."""

    def detect_leaks(self, *, observe: bool = True) -> list[MemoryLeak]:
        return [LEAK]

    def generate_recommendations(self, *, observe: bool = True) -> list[Recommendation]:
        return [REC]


def _metric(port: int, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_analysis_methods_feed_the_exports_and_the_page() -> None:
    prof = AnalysingProfiler(ProfilerConfig())
    tables = export.profiler_tables(prof)
    assert tables["leaks"]["holder"].tolist() == ["cache"] and tables["leaks"]["size"].tolist() == [12_000_000]
    assert tables["recommendations"]["description"].tolist() == ["use float32"]
    dash = MemoryDashboard(prof)
    dash.start_server(port=0, quiet=True)
    try:
        deadline = time.monotonic() + 10
        while (dash.feed is None or not dash.feed.findings()[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert dash.feed is not None
        leaks, recs = dash.feed.findings()
        assert [k.holder for k in leaks] == ["cache"] and recs[0].estimated_savings == 4_000_000
        time.sleep(0.3)  # past the /metrics cache
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 1
    finally:
        dash.stop()


def test_a_clean_profiler_shows_empty_findings_not_fake_ones() -> None:
    prof = MemoryProfiler(ProfilerConfig())
    tables = export.profiler_tables(prof)
    assert tables["leaks"].empty  # nothing planted, nothing found
    # Recommendations come from the real rules on this process's state (e.g. heap fragmentation
    # left by earlier tests), each with its measured or estimated savings; never a placeholder.
    recs = tables["recommendations"]
    assert list(recs.columns)[:4] == ["priority", "rule", "target", "description"]
    assert (recs["estimated_savings"] > 0).all()
    dash = MemoryDashboard(prof)
    dash.start_server(port=0, quiet=True)
    try:
        time.sleep(0.3)
        assert dash.feed is not None
        leaks, recs_shown = dash.feed.findings()
        assert leaks == []  # no leak without one planted
        assert {r.rule for r in recs_shown} <= set(recs["rule"])  # only what the rules found
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 0
    finally:
        dash.stop()


def test_leak_events_on_the_bus_reach_the_feed_and_are_counted_once_each() -> None:
    dash = MemoryDashboard(MemoryProfiler(ProfilerConfig()))
    dash.start_server(port=0, quiet=True)
    try:
        out = dataclasses.replace(LEAK, leak_id="output:Out[3]", holder="Out[3]", size=5_000_000)
        under = dataclasses.replace(LEAK, leak_id="output:_", holder="_", size=1_000_000)
        for leak in (out, under, dataclasses.replace(out, size=6_000_000)):  # the last one grew: same leak
            EVENT_BUS.publish(LeakDetected(leak))
        assert dash.feed is not None
        leaks, _ = dash.feed.findings()
        assert [(k.holder, k.size) for k in leaks] == [("Out[3]", 6_000_000), ("_", 1_000_000)]
        time.sleep(0.3)  # past the /metrics cache
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 2
    finally:
        dash.stop()
    EVENT_BUS.publish(LeakDetected(LEAK))  # after stop: nobody of the dashboard listens
    assert not EVENT_BUS.has_listeners
