"""The monitor thread feeds the event bus: samples, pressure crossings, session events."""

from __future__ import annotations

import asyncio
import mmap
import time
from typing import Callable, Iterator

import numpy as np
import pytest

from cgmem_nb import MEMORY_PROFILER, ConfigError
from cgmem_nb.engine import probes
from cgmem_nb.engine.events import (
    EVENT_BUS,
    EventReceiver,
    MemoryPressure,
    PressureLevel,
    ProfilerEvent,
    Sample,
    SessionFinished,
    SessionStarted,
)
from cgmem_nb.engine.monitor import MONITOR

MB = 1000**2


@pytest.fixture
def small_limit() -> Iterator[Callable[[int], None]]:
    """Set ``memory_limit_bytes`` for the test; restore the previous configuration after."""
    before = MEMORY_PROFILER.config

    def set_limit(limit: int) -> None:
        MEMORY_PROFILER.initialize(memory_limit_bytes=limit)

    yield set_limit
    MEMORY_PROFILER.initialize(before)


def _wait_for_sample(receiver: EventReceiver, seen: list[ProfilerEvent], ok: Callable[[int], bool], timeout: float = 5.0) -> int:
    """Drain ``receiver`` into ``seen`` until a Sample whose RSS satisfies ``ok``; return that RSS."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = receiver.drain()
        seen.extend(events)
        for event in events:
            if isinstance(event, Sample) and ok(event.rss_bytes):
                # One more tick so a crossing published right after this sample is in too.
                time.sleep(0.25)
                seen.extend(receiver.drain())
                return event.rss_bytes
        time.sleep(0.02)
    raise AssertionError(f"no sample matched within {timeout} s; last RSS {probes.rss()}")


def _touch(n_bytes: int) -> mmap.mmap:
    """``n_bytes`` of resident memory, returned to the OS as soon as it is dropped.

    An anonymous mmap with every page written: malloc'd blocks of a few MB may
    land on the heap (glibc's mmap threshold moves) and then stay resident after free.
    """
    block = mmap.mmap(-1, n_bytes)
    view = np.frombuffer(block, dtype=np.uint8)
    view.fill(1)
    del view
    return block


def test_receiver_gets_samples_and_releases_the_monitor_when_closed() -> None:
    assert not MONITOR.running
    with MEMORY_PROFILER.start_monitoring() as receiver:
        assert MONITOR.running
        seen: list[ProfilerEvent] = []
        rss = _wait_for_sample(receiver, seen, lambda r: r > 0)
        samples = [e for e in seen if isinstance(e, Sample)]
        assert abs(rss - probes.rss()) < 50 * MB
        assert all(b.t_s >= a.t_s for a, b in zip(samples, samples[1:]))
    deadline = time.monotonic() + 2
    while MONITOR.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not MONITOR.running


def test_async_receiver_ends_with_none_after_close() -> None:
    async def read() -> list[ProfilerEvent | None]:
        receiver = MEMORY_PROFILER.start_monitoring(maxsize=10)
        got: list[ProfilerEvent | None] = [await asyncio.wait_for(receiver.recv(), 5)]
        receiver.close()
        receiver.drain()
        got.append(await receiver.recv())
        return got

    first, last = asyncio.run(read())
    assert isinstance(first, Sample) and last is None


def test_sync_subscription_keeps_monitor_alive_until_closed() -> None:
    got: list[ProfilerEvent] = []
    sub = MEMORY_PROFILER.subscribe(got.append, Sample)
    deadline = time.monotonic() + 5
    while len(got) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sub.close()
    assert len(got) >= 3 and all(isinstance(e, Sample) for e in got)


def test_sessions_publish_started_and_finished_with_the_result_summary() -> None:
    got: list[ProfilerEvent] = []
    with EVENT_BUS.subscribe(got.append, (SessionStarted, SessionFinished)):
        with MEMORY_PROFILER.session("events-test") as s:
            block = np.ones(20 * MB, dtype=np.uint8)
        del block
    kinds = [type(e) for e in got]
    assert kinds == [SessionStarted, SessionFinished]
    started, finished = got
    assert isinstance(started, SessionStarted) and isinstance(finished, SessionFinished)
    assert started.session_id == finished.session_id == s.session_id
    assert finished.label == "events-test"
    assert s.result is not None and finished.summary.peak_bytes == s.result.summary.peak_bytes
    assert finished.summary.peak_bytes >= 20 * MB


def test_pressure_is_published_once_per_crossing_with_hysteresis(small_limit: Callable[[int], None]) -> None:
    base = probes.rss()
    limit = max(2 * base, 400 * MB)
    small_limit(limit)
    chunk = int(0.004 * limit)  # steps well inside the 0.02 hysteresis band
    blocks: list[mmap.mmap] = []

    def move_to(fraction: float) -> None:
        """Add or drop chunks (one at a time, never dipping) until RSS is at ``fraction`` of the limit."""
        while probes.rss() < fraction * limit:
            blocks.append(_touch(chunk))
        while blocks and probes.rss() - chunk >= fraction * limit:
            blocks.pop()

    seen: list[ProfilerEvent] = []
    with MEMORY_PROFILER.start_monitoring() as receiver:
        _wait_for_sample(receiver, seen, lambda r: r / limit < 0.70)
        move_to(0.75)                                           # LOW -> MEDIUM
        _wait_for_sample(receiver, seen, lambda r: r / limit >= 0.745)
        move_to(0.69)                                           # below 0.70, inside the hysteresis band
        _wait_for_sample(receiver, seen, lambda r: 0.685 < r / limit < 0.70)
        move_to(0.73)                                           # back above 0.70: still MEDIUM, no event
        _wait_for_sample(receiver, seen, lambda r: r / limit > 0.725)
        move_to(0.90)                                           # MEDIUM -> HIGH
        _wait_for_sample(receiver, seen, lambda r: r / limit >= 0.895)
        blocks.clear()                                          # HIGH -> LOW in one step
        _wait_for_sample(receiver, seen, lambda r: r / limit < 0.68)
    pressures = [e for e in seen if isinstance(e, MemoryPressure)]
    levels = [p.level for p in pressures]
    # Freeing 0.9 of the limit takes a while (one munmap per chunk, each outside the GIL): a tick
    # may land half-way down and publish MEDIUM on the way, which is a real crossing, once.
    middle = levels[2:-1]
    assert levels[:2] == [PressureLevel.MEDIUM, PressureLevel.HIGH] and levels[-1] == PressureLevel.LOW, [
        (p.level, round(p.fraction, 3)) for p in pressures
    ]
    assert middle in ([], [PressureLevel.MEDIUM]), [(p.level, round(p.fraction, 3)) for p in pressures]
    assert all(p.limit == limit for p in pressures)
    assert pressures[0].fraction >= 0.70 and pressures[1].fraction >= 0.85 and pressures[-1].fraction < 0.68
    if middle:
        assert 0.68 <= pressures[2].fraction < 0.85


def test_real_time_monitoring_off_means_no_live_events_and_a_clear_refusal() -> None:
    before = MEMORY_PROFILER.config
    got: list[ProfilerEvent] = []
    try:
        MEMORY_PROFILER.initialize(real_time_monitoring=False)
        with EVENT_BUS.subscribe(got.append), MONITOR.keep_alive(0.02):  # the monitor ticks, and listeners wait
            with MEMORY_PROFILER.session("quiet"):
                time.sleep(0.3)
        assert got == []  # no Sample, no MemoryPressure, no SessionStarted / SessionFinished
        for call in (MEMORY_PROFILER.start_monitoring, lambda: MEMORY_PROFILER.subscribe(got.append)):
            with pytest.raises(ConfigError, match="real_time_monitoring is False.*initialize\\(real_time_monitoring=True\\)"):
                call()
        MEMORY_PROFILER.initialize(real_time_monitoring=True)
        with EVENT_BUS.subscribe(got.append), MONITOR.keep_alive(0.02):
            with MEMORY_PROFILER.session("loud"):
                time.sleep(0.3)
        kinds = {type(e) for e in got}
        assert {Sample, SessionStarted, SessionFinished} <= kinds
    finally:
        MEMORY_PROFILER.initialize(before)


def test_every_sample_carries_the_limit_and_the_level_in_force(small_limit: Callable[[int], None]) -> None:
    base = probes.rss()
    small_limit(int(base / 0.75))  # RSS at 75% of the limit: MEDIUM
    with MEMORY_PROFILER.start_monitoring() as receiver:
        seen: list[ProfilerEvent] = []
        _wait_for_sample(receiver, seen, lambda r: r > 0)
    sample = next(e for e in seen if isinstance(e, Sample))
    assert sample.limit_bytes == MEMORY_PROFILER.memory_limit().bytes
    assert sample.level is PressureLevel.MEDIUM
