"""Ctrl-C at the wrong moment: a storm of SIGINTs at random points of sessions starting,
running and stopping leaves no tracer user, no monitor subscription and no session behind."""

from __future__ import annotations

import random
import signal
import threading
import time
import tracemalloc
from typing import Any

import pytest

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.engine.monitor import MONITOR
from cgmem_nb.engine.tracers import EXACT_TRACER, available_tracers
from cgmem_nb.session.runner import run_in_session


class _Zone:
    """Interrupts raise KeyboardInterrupt only inside a cycle (the code under test); one that
    lands in the test's own loop is counted and dropped, so the loop itself cannot break."""

    def __init__(self) -> None:
        self.inside = False
        self.raised = 0
        self.dropped = 0

    def handler(self, signum: int, frame: Any) -> None:
        if self.inside:
            self.raised += 1
            raise KeyboardInterrupt
        self.dropped += 1


def _cycle(zone: _Zone, kind: int) -> None:
    zone.inside = True
    try:
        tracer = "exact" if kind % 2 else "auto"
        if kind % 3 == 0:
            with MEMORY_PROFILER.session("storm", tracer=tracer, analyze=False):
                block = bytes(20_000)
                with MEMORY_PROFILER.session("inner", tracer=tracer, analyze=False):  # nested
                    more = [block] * 10  # noqa: F841
        else:
            run_in_session(MEMORY_PROFILER.session("storm", tracer=tracer, analyze=False), lambda: bytes(20_000))
    finally:
        zone.inside = False


def test_an_interrupt_storm_leaves_nothing_running() -> None:
    """3 to 20 s of SIGINTs every 0.2-30 ms at the main thread (bounded), against sessions
    starting, running and stopping, until each outcome happened 20 times."""
    zone = _Zone()
    previous = signal.signal(signal.SIGINT, zone.handler)
    main = threading.main_thread().ident
    assert main is not None
    stop = threading.Event()
    sent = [0]

    def storm() -> None:
        rng = random.Random(8)
        while not stop.is_set():
            signal.pthread_kill(main, signal.SIGINT)
            sent[0] += 1
            time.sleep(rng.uniform(0.0002, 0.03))

    thread = threading.Thread(target=storm, daemon=True)
    cycles = interrupted = 0
    started = time.monotonic()

    def more() -> bool:  # at least 3 s, and both outcomes 20 times (a loaded machine is slower); at most 20 s
        elapsed = time.monotonic() - started
        return elapsed < 20 and (elapsed < 3 or interrupted < 20 or cycles < 20)

    try:
        thread.start()
        kind = 0
        while more():
            kind += 1
            try:
                _cycle(zone, kind)
                cycles += 1
            except KeyboardInterrupt:
                interrupted += 1
    finally:
        stop.set()
        thread.join(5)
        time.sleep(0.05)  # the last signal is handled by the zone, outside any cycle
        signal.signal(signal.SIGINT, previous)
    print(f"\ninterrupt storm: {sent[0]} SIGINTs sent, {zone.raised} raised inside cycles, "
          f"{interrupted} cycles interrupted, {cycles} completed")
    assert interrupted >= 20 and cycles >= 20, "the storm must hit both outcomes"
    assert MEMORY_PROFILER.active_sessions == []
    assert not any(t.is_running() for t in available_tracers().values())
    assert not EXACT_TRACER.is_running() and not tracemalloc.is_tracing()
    deadline = time.monotonic() + 2
    while MONITOR.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not MONITOR.running, "a monitor subscription was left behind"
    assert signal.getsignal(signal.SIGINT) is previous
    with MEMORY_PROFILER.session(analyze=False) as s:  # and sessions still work
        kept = bytes(1_000_000)  # noqa: F841
    assert s.result is not None and s.result.summary.peak_bytes >= 900_000


@pytest.mark.parametrize("where", ["start", "stop"])
def test_an_interrupt_during_start_or_stop_waits_for_it(where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGINT that arrives in the middle of Recording.start / Recording.stop is raised after it."""
    from cgmem_nb.session import recording

    original = getattr(recording.Recording, where)

    def interrupted(self: Any, *args: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            signal.raise_signal(signal.SIGINT)  # lands at the next bytecode check, i.e. right here
        return original(self, *args)

    monkeypatch.setattr(recording.Recording, where, interrupted)
    session = MEMORY_PROFILER.session(tracer="exact", analyze=False)
    with pytest.raises(KeyboardInterrupt):
        with session:
            x = bytes(1000)  # noqa: F841
    assert MEMORY_PROFILER.active_sessions == [] and not tracemalloc.is_tracing()
    if where == "stop":
        assert session.result is not None  # stopped whole, then interrupted
    else:
        assert session.result is None and not session.running  # not started at all


def test_a_replaced_handler_is_forwarded_to_and_put_back() -> None:
    """A session that spans cells: ipykernel puts its own SIGINT handler back after each cell."""
    from cgmem_nb.session import interrupts

    calls: list[int] = []

    def cell_handler(signum: int, frame: Any) -> None:
        calls.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        session = MEMORY_PROFILER.session(analyze=False).start()   # "cell 1"
        signal.signal(signal.SIGINT, cell_handler)                # the kernel's hook, between cells
        assert interrupts.hold()                                  # "cell 2" stops it: held again
        interrupts.release(True)
        session.stop()
        assert signal.getsignal(signal.SIGINT) is cell_handler    # the handler in force is put back
        with pytest.raises(KeyboardInterrupt):
            with MEMORY_PROFILER.session(analyze=False):
                signal.raise_signal(signal.SIGINT)
                time.sleep(0.01)
        assert calls == [signal.SIGINT] and not MEMORY_PROFILER.active_sessions
    finally:
        signal.signal(signal.SIGINT, previous)
