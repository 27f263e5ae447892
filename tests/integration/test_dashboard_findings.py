"""Leaks and recommendations reach the dashboard from the analysis layer and the event bus, when present."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
import types
import urllib.request
from typing import Any, Callable

import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig, export
from cgmem_nb.analysis.model import Difficulty, LeakImpact, MemoryLeak, Recommendation
from cgmem_nb.outputs.dashboard import MemoryDashboard

pytestmark = pytest.mark.integration


LEAK = MemoryLeak(
    leak_id="L1", holder="cache", holder_kind="variable", category="Cache", size=12_000_000, growth=12_000_000,
    growth_rate=1e6, age=12.0, first_seen=time.time() - 12, last_seen=time.time(), first_cell=1, last_cell=3,
    observations=3, status="growing", estimated_impact=LeakImpact.High, time_to_limit=None, reason="grows every cell",
    fix="cache.clear()",
)
REC = Recommendation(
    priority=1, rule="downcast_numbers", target="df.x", description="use float32", action="df = df.astype('float32')",
    estimated_savings=4_000_000, savings_error=0, measured=True, difficulty=Difficulty.Easy,
)


class AnalysingProfiler(MemoryProfiler):
    """A profiler whose analysis finds one leak and one recommendation (planted)."""

    def detect_leaks(self) -> list[MemoryLeak]:
        return [LEAK]

    def generate_recommendations(self) -> list[Recommendation]:
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
        while (dash._feed is None or not dash._feed.leaks) and time.monotonic() < deadline:
            time.sleep(0.05)
        _, leaks, recs = dash._feed.findings()  # type: ignore[union-attr]
        assert [r["holder"] for r in leaks] == ["cache"] and recs[0]["estimated_savings"] == 4_000_000
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
        assert dash._feed is not None
        _, leaks, recs_shown = dash._feed.findings()
        assert leaks == []  # no leak without one planted
        assert {r["rule"] for r in recs_shown} <= set(recs["rule"])  # only what the rules found
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 0
    finally:
        dash.stop()


def test_leak_events_on_the_bus_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    subscribers: list[Callable[[Any], None]] = []

    class Sub:
        def close(self) -> None:
            subscribers.clear()

    class Bus:
        def subscribe(self, callback: Callable[[Any], None], types: Any = None) -> Sub:
            subscribers.append(callback)
            return Sub()

    @dataclass(frozen=True)
    class LeakDetected:
        leak: Any
        timestamp: float
        kind = "leak_detected"

    class RecommendationGenerated:
        kind = "recommendation_generated"

    events = types.ModuleType("cgmem_nb.engine.events")
    events.EVENT_BUS = Bus()  # type: ignore[attr-defined]
    events.LeakDetected = LeakDetected  # type: ignore[attr-defined]
    events.RecommendationGenerated = RecommendationGenerated  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cgmem_nb.engine.events", events)
    dash = MemoryDashboard(MemoryProfiler(ProfilerConfig()))
    dash.start_server(port=0, quiet=True)
    try:
        assert len(subscribers) == 1
        subscribers[0](LeakDetected({"holder": "Out[3]", "size_bytes": 5_000_000}, time.time()))
        subscribers[0](LeakDetected({"holder": "_", "size_bytes": 1_000_000}, time.time()))
        _, leaks, _ = dash._feed.findings()  # type: ignore[union-attr]
        assert [r["holder"] for r in leaks] == ["Out[3]", "_"]
        time.sleep(0.3)
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 2
    finally:
        dash.stop()
    assert subscribers == []  # unsubscribed on stop
