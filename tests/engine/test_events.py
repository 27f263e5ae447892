"""Behaviour of the event bus, the receivers and the pressure tracker."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest

from cgmem_nb.engine.events import (
    EVENT_BUS,
    EventBus,
    EventReceiver,
    LeakDetected,
    MemoryPressure,
    PressureLevel,
    ProfilerEvent,
    Sample,
    SessionFinished,
    SessionStarted,
    ThresholdBreached,
)
from cgmem_nb.engine.pressure import PressureTracker


def _sample(i: int, source: int = 0) -> Sample:
    return Sample(t_s=float(i), rss_bytes=source, traced_bytes=i)


# ----------------------------------------------------------------- events


def test_events_are_frozen_carry_kind_and_timestamp() -> None:
    before = time.time()
    event = MemoryPressure(level=PressureLevel.HIGH, current_usage=900, limit=1000)
    assert before <= event.timestamp <= time.time()
    assert event.kind == "memory_pressure"
    assert event.fraction == pytest.approx(0.9)
    with pytest.raises(AttributeError):
        event.level = PressureLevel.LOW  # type: ignore[misc]
    kinds = {cls.kind for cls in (MemoryPressure, LeakDetected, Sample, SessionStarted, SessionFinished, ThresholdBreached)}
    assert len(kinds) == 6 and "event" not in kinds
    assert SessionStarted("s1", "In[3]", timestamp=12.5).to_dict() == {
        "kind": "session_started",
        "timestamp": 12.5,
        "session_id": "s1",
        "label": "In[3]",
    }


def test_pressure_levels_are_ordered_and_built_from_seed_spelling() -> None:
    assert PressureLevel.LOW < PressureLevel.MEDIUM < PressureLevel.HIGH < PressureLevel.CRITICAL
    assert PressureLevel("Critical") is PressureLevel.CRITICAL
    assert [level.value for level in PressureLevel] == ["Low", "Medium", "High", "Critical"]


# ----------------------------------------------------------------- bus, sync


def test_callbacks_and_receivers_see_events_in_publish_order() -> None:
    bus = EventBus()
    seen: list[ProfilerEvent] = []
    receiver = bus.receiver()
    subscription = bus.subscribe(seen.append)
    events = [_sample(i) for i in range(5)]
    for event in events:
        bus.publish(event)
    assert seen == events
    assert receiver.drain() == events
    assert receiver.get_nowait() is None

    subscription.close()
    last = _sample(99)
    bus.publish(last)
    assert seen == events  # no delivery after unsubscribe
    assert receiver.get_nowait() is last  # the receiver is still subscribed


def test_type_filter_limits_what_a_listener_gets() -> None:
    bus = EventBus()
    pressure: list[ProfilerEvent] = []
    bus.subscribe(pressure.append, types=MemoryPressure)
    receiver = bus.receiver(types=(SessionStarted, SessionFinished))
    bus.publish(_sample(1))
    bus.publish(MemoryPressure(PressureLevel.HIGH, 90, 100))
    bus.publish(SessionStarted("a"))
    assert [e.kind for e in pressure] == ["memory_pressure"]
    assert [e.kind for e in receiver.drain()] == ["session_started"]


def test_full_receiver_drops_oldest_and_counts_per_receiver() -> None:
    bus = EventBus()
    small = bus.receiver(maxsize=3)
    large = bus.receiver(maxsize=100)
    for i in range(10):
        bus.publish(_sample(i))
    assert [e.t_s for e in small.drain()] == [7.0, 8.0, 9.0]  # type: ignore[attr-defined]
    assert small.dropped == 7
    assert small.received == 10
    assert len(large) == 10 and large.dropped == 0


def test_callback_exceptions_are_logged_counted_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    good_before: list[ProfilerEvent] = []
    good_after: list[ProfilerEvent] = []

    def broken(event: ProfilerEvent) -> None:
        raise RuntimeError("boom")

    bus.subscribe(good_before.append)
    bad = bus.subscribe(broken)
    bus.subscribe(good_after.append)
    receiver = bus.receiver()
    with caplog.at_level(logging.ERROR, logger="cgmem_nb.engine.subscription"):
        for i in range(5):
            bus.publish(_sample(i))  # must not raise
    assert len(good_before) == len(good_after) == len(receiver.drain()) == 5
    assert bad.errors == 5
    logged = [r for r in caplog.records if "boom" in (r.exc_text or "") or r.exc_info]
    assert 1 <= len(logged) <= 3  # logged, but not once per event forever


def test_context_managers_unsubscribe_and_close() -> None:
    bus = EventBus()
    got: list[ProfilerEvent] = []
    first = _sample(1)
    with bus.subscribe(got.append) as subscription, bus.receiver() as receiver:
        bus.publish(first)
    assert subscription.closed and receiver.closed
    bus.publish(_sample(2))
    assert got == [first]
    assert receiver.drain() == [first]  # queued before close: still readable
    assert not bus.has_listeners


def test_unreferenced_receiver_is_released_by_the_bus() -> None:
    bus = EventBus()
    receiver = bus.receiver()
    assert bus.has_listeners
    del receiver
    gc.collect()
    assert not bus.has_listeners
    bus.publish(_sample(1))  # prunes the dead reference without error


def test_process_wide_bus_exists() -> None:
    assert isinstance(EVENT_BUS, EventBus)


def test_the_bus_and_the_monitor_hand_out_one_kind_of_subscription() -> None:
    from cgmem_nb.engine.monitor import Monitor
    from cgmem_nb.engine.subscription import Subscription

    with EventBus().subscribe(lambda e: None) as on_bus, Monitor().subscribe(lambda t: None, 0.05) as on_monitor:
        assert type(on_bus) is type(on_monitor) is Subscription
    assert on_bus.closed and on_monitor.closed


# ----------------------------------------------------------------- bus, async


def test_async_for_ends_and_recv_returns_none_after_close() -> None:
    bus = EventBus()

    async def main() -> tuple[list[float], object]:
        receiver = bus.receiver()

        async def produce() -> None:
            for i in range(3):
                await asyncio.sleep(0.01)
                bus.publish(_sample(i))
            receiver.close()

        task = asyncio.create_task(produce())
        got = [e.t_s async for e in receiver]  # type: ignore[attr-defined]
        await task
        return got, await receiver.recv()

    got, after = asyncio.run(asyncio.wait_for(main(), 5))
    assert got == [0.0, 1.0, 2.0]
    assert after is None


def test_recv_wakes_for_event_published_from_another_thread() -> None:
    bus = EventBus()
    receiver = bus.receiver()  # created outside any event loop

    def later() -> None:
        time.sleep(0.1)
        bus.publish(SessionStarted("from-thread"))

    async def main() -> ProfilerEvent | None:
        threading.Thread(target=later).start()
        return await asyncio.wait_for(receiver.recv(), 5)

    t0 = time.monotonic()
    event = asyncio.run(main())
    assert isinstance(event, SessionStarted) and event.session_id == "from-thread"
    assert time.monotonic() - t0 < 2.0, "the waiting loop was not woken promptly"

    # The same receiver works on a second loop, and a close() from a thread ends a waiting recv().
    threading.Timer(0.1, receiver.close).start()
    t0 = time.monotonic()
    assert asyncio.run(asyncio.wait_for(receiver.recv(), 5)) is None
    assert time.monotonic() - t0 < 2.0


def test_several_producer_threads_deliver_everything_in_per_producer_order() -> None:
    bus = EventBus()
    producers, per_producer = 4, 400
    receiver = bus.receiver(maxsize=producers * per_producer)
    counted: list[ProfilerEvent] = []
    bus.subscribe(counted.append)  # list.append is atomic under the GIL
    start = threading.Barrier(producers)

    def produce(source: int) -> None:
        start.wait()
        for i in range(per_producer):
            bus.publish(_sample(i, source))
            if i % 50 == 0:
                time.sleep(0)  # let the others interleave

    async def consume() -> list[Sample]:
        threads = [threading.Thread(target=produce, args=(k,)) for k in range(producers)]
        for t in threads:
            t.start()
        got: list[Sample] = []
        while len(got) < producers * per_producer:
            event = await asyncio.wait_for(receiver.recv(), 10)
            assert isinstance(event, Sample)
            got.append(event)
        for t in threads:
            t.join()
        return got

    got = asyncio.run(consume())
    assert receiver.dropped == 0
    assert len(counted) == producers * per_producer
    for source in range(producers):
        mine = [e.traced_bytes for e in got if e.rss_bytes == source]
        assert mine == list(range(per_producer)), f"producer {source} out of order or incomplete"


# ----------------------------------------------------------------- pressure


def test_pressure_tracker_emits_once_per_crossing_with_hysteresis() -> None:
    tracker = PressureTracker(limit=1000, hysteresis=0.02)  # Medium 700, High 850, Critical 950
    readings = [500, 700, 710, 690, 681, 679, 681, 699, 700, 960, 940, 931, 929, 835, 829, 100, 100]
    emitted = [(r, e.level) for r in readings if (e := tracker.update(r)) is not None]
    assert emitted == [
        (700, PressureLevel.MEDIUM),  # up: reached 0.70
        (679, PressureLevel.LOW),  # down only below 0.70 - 0.02
        (700, PressureLevel.MEDIUM),  # 681 and 699 stay LOW: no re-entry below 0.70
        (960, PressureLevel.CRITICAL),  # a jump of two levels is one event
        (929, PressureLevel.HIGH),  # 940 and 931 are within hysteresis of 0.95
        (829, PressureLevel.MEDIUM),
        (100, PressureLevel.LOW),
    ]
    assert tracker.level is PressureLevel.LOW


def test_hysteresis_suppresses_flapping_around_a_threshold() -> None:
    flapping = [699, 701] * 20
    damped = PressureTracker(limit=1000, hysteresis=0.02)
    undamped = PressureTracker(limit=1000, hysteresis=0.0)
    assert sum(damped.update(r) is not None for r in flapping) == 1
    assert sum(undamped.update(r) is not None for r in flapping) == 39


def test_pressure_tracker_custom_thresholds_and_event_fields() -> None:
    tracker = PressureTracker(limit=200, thresholds={PressureLevel.MEDIUM: 0.5}, hysteresis=0.0)
    event = tracker.update(100)
    assert event == MemoryPressure(PressureLevel.MEDIUM, 100, 200, timestamp=event.timestamp if event else 0.0)
    assert tracker.update(199) is not None and tracker.level is PressureLevel.CRITICAL


@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 0},
        {"limit": 100, "thresholds": {PressureLevel.HIGH: 0.5}},  # below MEDIUM's 0.70
        {"limit": 100, "thresholds": {PressureLevel.LOW: 0.1}},
        {"limit": 100, "thresholds": {PressureLevel.CRITICAL: 1.5}},
        {"limit": 100, "hysteresis": -0.1},
    ],
)
def test_pressure_tracker_rejects_bad_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not accepted"):
        PressureTracker(**kwargs)  # type: ignore[arg-type]


def test_receiver_rejects_bad_maxsize() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        EventReceiver(None, maxsize=0)


def test_close_hooks_run_once_on_close_or_when_an_unclosed_receiver_is_freed() -> None:
    bus = EventBus()
    calls: list[str] = []
    receiver = bus.receiver(on_close=lambda: calls.append("receiver"))
    receiver.close()
    receiver.close()
    subscription = bus.subscribe(lambda e: None, on_close=lambda: calls.append("subscription"))
    subscription.close()
    subscription.close()
    assert calls == ["receiver", "subscription"]

    forgotten = bus.receiver(on_close=lambda: calls.append("forgotten"))
    del forgotten
    gc.collect()
    assert calls[-1] == "forgotten" and calls.count("forgotten") == 1

    bus.subscribe(lambda e: None, on_close=lambda: calls.append("bus closed"))
    bus.close()
    assert calls[-1] == "bus closed"
