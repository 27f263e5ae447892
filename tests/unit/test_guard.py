"""The memory guard in-process: it interrupts allocating code near the limit and names the line."""

from __future__ import annotations

import threading
import time

import pytest

from cgmem_nb import MemoryProfiler, ProfileResult, ProfilerConfig
from cgmem_nb.engine import probes

MB = 1000**2


def _greedy(chunks: list[bytes]) -> None:
    for _ in range(400):  # 2 GB if nothing stops it
        chunks.append(b"x" * (5 * MB))
        time.sleep(0.005)


def _profiler(headroom: int = 300 * MB) -> MemoryProfiler:
    return MemoryProfiler(ProfilerConfig(memory_limit_bytes=probes.rss() + headroom))


def test_guard_interrupts_the_main_thread_and_names_the_allocating_line() -> None:
    prof = _profiler()
    chunks: list[bytes] = []
    with pytest.raises(KeyboardInterrupt):
        with prof.session("greedy", guard=True):
            _greedy(chunks)
    assert 30 <= len(chunks) < 120
    result = prof.last_result
    assert result is not None and result.summary.guard_triggered and result.summary.interrupted
    guard = result.summary.guard
    assert guard is not None and guard.method == "signal"
    assert guard.rss_bytes >= guard.threshold_bytes == int(0.95 * guard.limit_bytes)
    top = guard.top_lines[0]
    assert top.code == "chunks.append(b\"x\" * (5 * MB))"
    # the snapshot is taken at the trigger, a few chunks before the interrupt lands:
    # the line held most of the 300 MB headroom, and no more than what was allocated
    assert 250 * MB <= top.bytes <= len(chunks) * 5 * MB + MB
    assert result.lines.iloc[0].code == top.code
    assert ProfileResult.from_json(result.to_json()) == result  # the guard's report round-trips
    del chunks


def test_guard_interrupts_a_session_on_another_thread_with_an_async_exception() -> None:
    prof = _profiler()
    outcome: dict[str, object] = {}

    def work() -> None:
        chunks: list[bytes] = []
        try:
            with prof.session("thread", guard=True):
                _greedy(chunks)
        except KeyboardInterrupt:
            outcome["interrupted"] = len(chunks)

    t = threading.Thread(target=work)
    t.start()
    t.join(30)
    assert 30 <= int(outcome["interrupted"]) < 120  # type: ignore[call-overload]
    assert prof.last_result is not None and prof.last_result.summary.guard is not None
    assert prof.last_result.summary.guard.method == "async-exception"


def test_unguarded_and_below_threshold_sessions_are_not_interrupted() -> None:
    prof = _profiler(headroom=2000 * MB)
    with prof.session(guard=True) as s:
        data = b"x" * (50 * MB)
        time.sleep(0.2)
    assert s.result is not None and s.result.summary.guard_triggered is False and s.result.summary.guard is None
    with prof.session() as s2:
        pass
    assert s2.result is not None and not s2.result.summary.guard_armed
    del data


def test_guard_follows_the_config_default() -> None:
    prof = MemoryProfiler(ProfilerConfig(memory_limit_bytes=probes.rss() + 300 * MB, guard=True))
    with pytest.raises(KeyboardInterrupt):
        with prof.session():
            _greedy([])
    assert prof.last_result is not None and prof.last_result.summary.guard_triggered


def test_nested_guarded_sessions_interrupt_once_and_both_stop_cleanly() -> None:
    prof = _profiler()
    chunks: list[bytes] = []
    with pytest.raises(KeyboardInterrupt):
        with prof.session("outer", guard=True) as outer:
            with prof.session("inner", guard=True) as inner:
                _greedy(chunks)
    assert not prof.active_sessions
    assert inner.result is not None and outer.result is not None
    # whichever guard saw the reading first interrupted; the other shared it or never fired
    methods = [r.summary.guard.method if r.summary.guard else None for r in (inner.result, outer.result)]
    assert methods.count("signal") == 1 and set(methods) <= {"signal", "shared", None}, methods
    del chunks
