"""Leaks and recommendations reach the dashboard from the analysis layer and the event bus, when present."""

from __future__ import annotations

import sys
import time
import types
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig, export
from cgmem_nb.outputs.dashboard import MemoryDashboard

pytestmark = pytest.mark.integration


@dataclass
class Leak:
    holder: str
    size_bytes: int
    impact: str
    last_seen: float


class AnalysingProfiler(MemoryProfiler):
    """A profiler with the analysis layer's two methods (as the analysis branch adds them)."""

    def detect_leaks(self) -> list[Leak]:
        return [Leak("cache", 12_000_000, "High", time.time())]

    def generate_recommendations(self) -> list[dict[str, Any]]:
        return [{"priority": 1, "description": "use float32", "action": "df = df.astype('float32')", "savings_bytes": 4_000_000}]


def _metric(port: int, name: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return next(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def test_analysis_methods_feed_the_exports_and_the_page() -> None:
    prof = AnalysingProfiler(ProfilerConfig())
    tables = export.profiler_tables(prof)
    assert tables["leaks"]["holder"].tolist() == ["cache"] and tables["leaks"]["size_bytes"].tolist() == [12_000_000]
    assert tables["recommendations"]["description"].tolist() == ["use float32"]
    dash = MemoryDashboard(prof)
    dash.start_server(port=0, quiet=True)
    try:
        deadline = time.monotonic() + 10
        while (dash._feed is None or not dash._feed.leaks) and time.monotonic() < deadline:
            time.sleep(0.05)
        _, leaks, recs = dash._feed.findings()  # type: ignore[union-attr]
        assert [r["holder"] for r in leaks] == ["cache"] and recs[0]["savings_bytes"] == 4_000_000
        time.sleep(0.3)  # past the /metrics cache
        assert _metric(dash.port or 0, "cgmem_leaks_detected_total") == 1
    finally:
        dash.stop()


def test_without_the_analysis_layer_the_sections_stay_empty() -> None:
    prof = MemoryProfiler(ProfilerConfig())
    assert "leaks" not in export.profiler_tables(prof)
    dash = MemoryDashboard(prof)
    dash.start_server(port=0, quiet=True)
    try:
        time.sleep(0.3)
        assert dash._feed is not None and dash._feed.findings()[1:] == ([], [])
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
