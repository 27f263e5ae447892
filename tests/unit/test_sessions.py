"""Sessions against ground truth that the tests allocate themselves."""

from __future__ import annotations

import dataclasses
import threading
import tracemalloc
from typing import Callable

import numpy as np
import pytest

from cgmem_nb import MEMORY_PROFILER, MemoryProfiler, ProfileResult, ProfilerConfig, SessionError, Summary
from cgmem_nb.engine.tracers import available_tracers

MB = 1000**2


def _within(value: float, target: float, tolerance: float = 0.05) -> bool:
    return abs(value - target) <= tolerance * target


def make_temporary_and_kept(checkpoint: Callable[[], None] = lambda: None) -> list[bytes]:
    tmp = np.ones(5_000_000)  # 40 MB, dropped
    keep = [bytes(1_000_000) for _ in range(20)]  # 20 MB, kept
    checkpoint()  # plain sessions snapshot peaks at monitor ticks and at checkpoints
    del tmp
    return keep


@pytest.mark.parametrize("tracer", ["exact", "sampled"])
def test_session_peak_and_retained_match_ground_truth(tracer: str) -> None:
    with MEMORY_PROFILER.session("truth", tracer=tracer) as s:  # type: ignore[arg-type]
        kept = make_temporary_and_kept()
    assert s.result is not None
    summary = s.result.summary
    assert _within(summary.peak_bytes, 60 * MB), summary.peak_bytes
    assert _within(summary.retained_bytes, 20 * MB), summary.retained_bytes
    assert summary.tracer == tracer and summary.label == "truth"
    assert summary.estimate is (tracer == "sampled")
    assert len(kept) == 20


@pytest.mark.parametrize("tracer", ["exact", "sampled"])
def test_lines_name_the_temporary_and_the_kept_line(tracer: str) -> None:
    with MEMORY_PROFILER.session(tracer=tracer) as s:  # type: ignore[arg-type]
        kept = make_temporary_and_kept(s.checkpoint)
    lines = s.result.lines  # type: ignore[union-attr]
    by_code = {row.code: row for row in lines.itertuples()}
    tmp_row = by_code["tmp = np.ones(5_000_000)  # 40 MB, dropped"]
    keep_row = by_code["keep = [bytes(1_000_000) for _ in range(20)]  # 20 MB, kept"]
    assert _within(tmp_row.peak_bytes, 40 * MB) and tmp_row.retained_bytes < MB
    assert _within(keep_row.retained_bytes, 20 * MB)
    assert tmp_row.category == "Vector"
    assert lines.iloc[0].code == tmp_row.code  # biggest at the peak first
    del kept


def test_nested_sessions_each_see_their_own_part() -> None:
    with MEMORY_PROFILER.session("outer") as outer:
        a = bytes(30 * MB)
        with MEMORY_PROFILER.session("inner") as inner:
            b = bytes(10 * MB)
        del b
    assert _within(outer.result.summary.peak_bytes, 40 * MB)  # type: ignore[union-attr]
    assert _within(outer.result.summary.retained_bytes, 30 * MB)  # type: ignore[union-attr]
    assert _within(inner.result.summary.peak_bytes, 10 * MB)  # type: ignore[union-attr]
    assert _within(inner.result.summary.retained_bytes, 10 * MB)  # type: ignore[union-attr]
    del a


def test_inner_reset_does_not_hide_outer_peak() -> None:
    with MEMORY_PROFILER.session("outer") as outer:
        big = bytes(50 * MB)
        del big
        with MEMORY_PROFILER.session("inner"):
            small = bytes(1 * MB)
        del small
    assert _within(outer.result.summary.peak_bytes, 50 * MB)  # type: ignore[union-attr]


def test_user_tracemalloc_is_respected() -> None:
    tracemalloc.start(3)
    try:
        keep_before = bytes(5 * MB)
        with MEMORY_PROFILER.session(tracer="exact") as s:
            inside = bytes(10 * MB)
        assert tracemalloc.is_tracing(), "the profiler stopped a tracemalloc it did not start"
        assert tracemalloc.get_traceback_limit() == 3
        assert s.result.summary.stack_depth == 3  # type: ignore[union-attr]
        assert _within(s.result.summary.retained_bytes, 10 * MB)  # type: ignore[union-attr]
        snap = tracemalloc.take_snapshot()
        assert sum(t.size for t in snap.traces) >= 15 * MB  # the user's traces survived
        del inside, keep_before
    finally:
        tracemalloc.stop()


def test_session_decorator_records_each_call() -> None:
    @MEMORY_PROFILER.session("decorated")
    def work() -> int:
        data = bytes(12 * MB)
        return len(data)

    assert work() == 12 * MB
    result = MEMORY_PROFILER.last_result
    assert result is not None and result.summary.label == "decorated"
    assert _within(result.summary.peak_bytes, 12 * MB)


@pytest.mark.parametrize("tracer", ["exact", "sampled"])
def test_exception_stops_tracer_and_stores_result(tracer: str) -> None:
    with pytest.raises(ZeroDivisionError):
        with MEMORY_PROFILER.session("boom", tracer=tracer):  # type: ignore[arg-type]
            junk = bytes(3 * MB)
            1 / 0
    assert not any(t.is_running() for t in available_tracers().values()) and not tracemalloc.is_tracing()
    result = MEMORY_PROFILER.last_result
    assert result is not None and result.summary.error.startswith("ZeroDivisionError")
    del junk


def test_session_cannot_be_reused() -> None:
    s = MEMORY_PROFILER.session()
    with s:
        pass
    with pytest.raises(SessionError, match="ended"):
        s.start()
    with pytest.raises(SessionError, match="not running"):
        s.stop()


def test_disabled_profiler_records_nothing() -> None:
    profiler = MemoryProfiler(ProfilerConfig(enabled=False))
    with profiler.session() as s:
        data = bytes(5 * MB)
    assert s.result.summary.tracer == "disabled" and s.result.summary.peak_bytes == 0  # type: ignore[union-attr]
    assert not tracemalloc.is_tracing()
    del data


def test_timeline_has_samples_of_a_slow_session() -> None:
    profiler = MemoryProfiler(ProfilerConfig(sample_interval=0.02))
    with profiler.session() as s:
        chunks = []
        for _ in range(10):
            chunks.append(bytes(MB))
            threading.Event().wait(0.02)
    timeline = s.result.timeline  # type: ignore[union-attr]
    assert len(timeline) >= 5
    assert timeline["t_s"].is_monotonic_increasing
    assert _within(float(timeline["traced_bytes"].iloc[-1]), 10 * MB, 0.1)
    assert int(timeline["rss_bytes"].min()) > 0


def test_result_json_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with MEMORY_PROFILER.session("json") as s:
        kept = make_temporary_and_kept()
    result = s.result
    assert result is not None
    path = tmp_path / "r.json"
    text = result.to_json(path)
    again = ProfileResult.from_json(path)
    assert again == result
    assert ProfileResult.from_json(text) == result
    assert again.lines.dtypes.equals(result.lines.dtypes)
    del kept


def test_result_tables_are_copies() -> None:
    with MEMORY_PROFILER.session() as s:
        data = bytes(2 * MB)
    result = s.result
    assert result is not None
    lines = result.lines
    lines["peak_bytes"] = 0
    assert int(result.lines["peak_bytes"].sum()) > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.summary.peak_bytes = 0  # type: ignore[misc]
    del data


def test_the_summary_is_typed_and_its_old_string_keys_still_read_with_a_warning() -> None:
    with MEMORY_PROFILER.session("typed") as s:
        data = bytes(3 * MB)
    assert s.result is not None
    summary = s.result.summary
    assert isinstance(summary, Summary) and summary.label == "typed" and _within(summary.retained_bytes, 3 * MB)
    with pytest.warns(DeprecationWarning, match=r'summary\["peak_bytes"\] is deprecated: read summary.peak_bytes'):
        assert summary["peak_bytes"] == summary.peak_bytes
    with pytest.warns(DeprecationWarning):
        assert summary.get("label") == "typed" and summary.get("nope", 7) == 7
    with pytest.warns(DeprecationWarning), pytest.raises(KeyError, match="not a summary figure"):
        summary["nope"]
    data_dict = summary.to_dict()
    assert data_dict["peak_bytes"] == summary.peak_bytes and Summary.from_dict(data_dict) == summary
    # Figures an older version did not write take their defaults; unknown ones are ignored.
    old = {k: v for k, v in data_dict.items() if not k.startswith("guard")} | {"from_the_future": 1}
    assert Summary.from_dict(old) == summary
    del data
