"""Leak rules, impact grades, patterns and savings estimates on data the tests build (no kernel)."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.analysis import LeakDetector, LeakImpact, LeakSettings, PatternAnalyzer, RecommendationEngine, describe_holders
from cgmem_nb.analysis.recommend import Context, Draft
from cgmem_nb.analysis.savings import category_savings, smallest_int_dtype
from cgmem_nb.schema import TABLES, Difficulty, PressureLevel, leaks_frame, patterns_frame
from cgmem_nb.session.holders import HolderReading, Observation
from cgmem_nb.sizing import deep_size, measure

if TYPE_CHECKING:
    from pathlib import Path

MB = 1000**2
GB = 1000**3


def obs(t: float, *readings: HolderReading, heap: int | None = None, limit: int = 10 * GB, rss: int = 1 * GB) -> Observation:
    return Observation(t=t, cell=int(t), rss=rss, heap_in_use=heap, heap_free=0, traced=None, limit=limit,
                       holders={r.key: r for r in readings})


def var(name: str, size: int, *, kind: str = "variable", capacity: int | None = None, oid: int = 1, category: str = "Vector") -> HolderReading:
    return HolderReading(f"{kind}:{name}", kind, name, size, None, category, "list", capacity, oid)


def test_growing_variable_is_a_leak_with_history_fields() -> None:
    series = [obs(i, var("log", (i + 1) * 5 * MB)) for i in range(5)]
    (leak,) = LeakDetector().detect(series, now=10.0)
    assert (leak.holder, leak.holder_kind, leak.status, leak.category) == ("log", "variable", "growing", "Vector")
    assert leak.growth == 20 * MB and leak.size == 25 * MB
    assert leak.first_seen == 0 and leak.last_seen == 4 and leak.age == 10.0
    assert leak.growth_rate == pytest.approx(5 * MB)
    assert leaks_frame([leak])["size"].tolist() == [25 * MB]


def test_stable_big_variable_is_not_a_leak() -> None:
    assert LeakDetector().detect([obs(i, var("big", 4 * GB)) for i in range(6)]) == []


def test_growth_that_stopped_is_warm_up_not_a_leak() -> None:
    sizes = [1, 2, 3, 3, 3, 3, 3]
    assert LeakDetector().detect([obs(i, var("w", s * 10 * MB)) for i, s in enumerate(sizes)]) == []


def test_bounded_cache_that_filled_up_is_not_a_leak_but_an_unbounded_one_is() -> None:
    bounded = [obs(i, var("f", (i + 1) * 10 * MB, kind="cache", capacity=128)) for i in range(5)]
    unbounded = [obs(i, var("g", (i + 1) * 10 * MB, kind="cache", capacity=None)) for i in range(5)]
    assert LeakDetector().detect(bounded) == []
    (leak,) = LeakDetector().detect(unbounded)
    assert leak.holder == "g (lru_cache)"


def test_freed_leak_is_kept_as_resolved() -> None:
    detector = LeakDetector()
    series = [obs(i, var("log", (i + 1) * 5 * MB)) for i in range(4)]
    assert detector.detect(series)[0].status == "growing"
    series.append(obs(5))  # the variable is gone
    (leak,) = detector.detect(series)
    assert leak.status == "resolved" and leak.last_seen == 3


def test_heap_growth_no_holder_explains_is_unreachable_and_rss_only_growth_is_not() -> None:
    native = [obs(i, var("x", 10 * MB), heap=100 * MB + i * 20 * MB) for i in range(5)]
    (leak,) = LeakDetector().detect(native)
    assert leak.holder_kind == "native" and leak.growth == 80 * MB
    explained = [obs(i, var("x", 10 * MB + i * 20 * MB), heap=100 * MB + i * 20 * MB) for i in range(5)]
    assert [k.holder_kind for k in LeakDetector().detect(explained)] == ["variable"]
    fragmented = [obs(i, var("x", 10 * MB), heap=100 * MB, rss=GB + i * 100 * MB) for i in range(5)]
    assert LeakDetector().detect(fragmented) == []


@pytest.mark.parametrize(
    ("size", "rate", "expected"),
    [
        (1 * MB, 0.0, LeakImpact.LOW),
        (300 * MB, 0.0, LeakImpact.MEDIUM),  # 3% of 10 GB
        (1500 * MB, 0.0, LeakImpact.HIGH),  # 15%
        (3 * GB, 0.0, LeakImpact.CRITICAL),  # 30%
        (1 * MB, 9 * GB / 7200, LeakImpact.MEDIUM),  # 2 h to the limit
        (1 * MB, 9 * GB / 1800, LeakImpact.HIGH),  # 30 min
        (1 * MB, 9 * GB / 60, LeakImpact.CRITICAL),  # 1 min
    ],
)
def test_impact_grades_follow_the_documented_thresholds(size: int, rate: float, expected: LeakImpact) -> None:
    impact, _ttl = LeakDetector().impact(size, rate, limit=10 * GB, used=1 * GB)
    assert impact is expected


def test_user_rules_run_after_the_default_ones() -> None:
    from cgmem_nb.analysis.leaks import Finding

    detector = LeakDetector(LeakSettings())
    detector.add_rule(lambda o, s: [Finding("x:y", "y", "variable", "Unknown", ((0.0, 0, 5 * MB),), "held", "custom", "del y")])
    assert [k.leak_id for k in detector.detect([obs(0)])] == ["x:y"]


def test_patterns_count_allocations_lifetimes_and_averages_per_category() -> None:
    series = [
        obs(0, var("a", 10 * MB, oid=1)),
        obs(1, var("a", 10 * MB, oid=1), var("tmp", 4 * MB, oid=2, category="String")),
        obs(2, var("a", 30 * MB, oid=1)),
        obs(3, var("a", 30 * MB, oid=1)),
    ]
    by_cat = {p.category: p for p in PatternAnalyzer(lifetime_cells=2).analyze(series)}
    vec, text = by_cat["Vector"], by_cat["String"]
    assert (vec.average_usage, vec.peak_usage, vec.current_usage) == (20 * MB, 30 * MB, 30 * MB)
    assert (text.allocation_count, text.deallocation_count, text.freed_within_cells_bytes) == (1, 1, 4 * MB)
    assert text.allocation_rate == pytest.approx(1 / 3)
    assert math.isnan(vec.peak_to_retained)
    assert list(patterns_frame(by_cat.values())["category"]) == ["Vector", "String"]


def test_sampled_category_savings_bound_the_exact_figure() -> None:
    col = pd.Series([f"c{i % 30}" for i in range(300_000)], dtype=object)
    exact, err0, _ = category_savings(col, exact_rows=10**9)  # type: ignore[misc]
    sampled, err, share = category_savings(col, exact_rows=100_000, sample_rows=20_000)  # type: ignore[misc]
    assert err0 == 0 and share < 0.01
    assert abs(sampled - exact) <= max(err, 0.02 * exact)


def test_smallest_int_dtype_fits_the_range() -> None:
    assert smallest_int_dtype(np.array([0, 100])) == np.int8
    assert smallest_int_dtype(np.array([-40_000, 5])) == np.int32
    assert smallest_int_dtype(np.array([2**40])) is None


def test_engine_ranks_by_savings_weighted_by_ease_and_takes_user_rules() -> None:
    engine = RecommendationEngine(rules=[])
    engine.add_rule(lambda ctx: [Draft("r", "hard", "d", "a", 100 * MB, Difficulty.Hard)])
    engine.add_rule(lambda ctx: [Draft("r", "easy", "d", "a", 50 * MB, Difficulty.Easy)])
    engine.add_rule(lambda ctx: [Draft("r", "tiny", "d", "a", 10, Difficulty.Easy)])
    recs = engine.recommend(Context())
    assert [(r.target, r.priority) for r in recs] == [("easy", 1), ("hard", 2)]


def test_measure_counts_a_view_by_what_it_shows_and_reports_the_buffer_it_keeps() -> None:
    base = np.ones(1_000_000)
    view = base[:1000]
    m = measure(view)
    assert 8000 <= m.size < 9000
    assert m.buffers[id(base)] == (8000, base.nbytes)
    assert deep_size([base, base]) < 2 * base.nbytes  # shared object counted once


def test_a_failing_recommendation_rule_is_skipped_with_a_log_line_naming_it(caplog: pytest.LogCaptureFixture) -> None:
    def broken_rule(ctx: Context) -> list[Draft]:
        raise ValueError("odd data")

    engine = RecommendationEngine(rules=[])
    engine.add_rule(broken_rule)
    engine.add_rule(lambda ctx: [Draft("r", "fine", "d", "a", 5 * MB, Difficulty.Easy)])
    with caplog.at_level(logging.WARNING, logger="cgmem_nb.analysis.recommend"):
        recs = engine.recommend(Context())
    assert [r.target for r in recs] == ["fine"]  # the others still run
    logged = [r for r in caplog.records if "broken_rule" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None and "odd data" in str(logged[0].exc_info[1])


def test_one_low_to_critical_scale_and_the_old_spellings_warn() -> None:
    assert LeakImpact is PressureLevel
    assert LeakDetector().impact(3 * GB, 0.0, limit=10 * GB, used=GB)[0] is PressureLevel.CRITICAL
    with pytest.warns(DeprecationWarning, match=r"\.LOW"):
        assert LeakImpact.Low is PressureLevel.LOW  # type: ignore[attr-defined]
    assert PressureLevel("High") is PressureLevel.HIGH and PressureLevel.HIGH > PressureLevel.MEDIUM
    with pytest.raises(AttributeError):
        PressureLevel.Severe  # type: ignore[attr-defined]  # noqa: B018


def test_describe_holders_names_each_unresolved_leak_with_its_size_and_growth() -> None:
    series = [obs(i, var("helpers.REGISTRY", (i + 1) * 5 * MB, kind="module")) for i in range(4)]
    leaks = LeakDetector().detect(series)
    assert describe_holders(leaks) == ["helpers.REGISTRY (module, 20.0 MB, +15.0 MB)"]
    resolved = LeakDetector()
    resolved.detect(series)
    assert describe_holders(resolved.detect([*series, obs(9)])) == []


def test_session_result_carries_leak_pattern_and_recommendation_tables() -> None:
    with MEMORY_PROFILER.session("analysis") as s:
        keep = [bytearray(1_000_000) for _ in range(3)]
    with MEMORY_PROFILER.session("plain", analyze=False) as plain:
        other = [bytearray(1_000_000) for _ in range(3)]
    result = s.result
    assert result is not None and plain.result is not None
    # Every result has the three tables (empty ones included): what matters is that the analysis filled them.
    assert not result.patterns.empty and plain.result.patterns.empty
    assert int(result.patterns["peak_usage"].max()) >= 3 * MB  # the three 1 MB buffers
    for table in ("leaks", "patterns", "recommendations"):
        assert list(result.table(table).columns) == [c.name for c in TABLES[table]]
    assert type(result).from_json(result.to_json()) == result
    del keep, other


def test_observations_follow_a_module_swapped_for_another(tmp_path: "Path", monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys

    from cgmem_nb.session.holders import observe

    for name in ("swapped_a", "swapped_b"):
        (tmp_path / f"{name}.py").write_text(f"STORE_{name[-1].upper()} = [bytes(10)] * 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("swapped_a")
    assert "module:swapped_a.STORE_A" in observe(limit=GB).holders
    # Same number of modules, another one: the holders must follow (a count alone would not see it).
    del sys.modules["swapped_a"]
    importlib.import_module("swapped_b")
    holders = observe(limit=GB).holders
    assert "module:swapped_b.STORE_B" in holders and "module:swapped_a.STORE_A" not in holders
    del sys.modules["swapped_b"]
