"""Shared fixtures. The autouse guard fails any test that leaves the profiler running."""

from __future__ import annotations

import time
import tracemalloc
from typing import Iterator

import pytest

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.engine.monitor import MONITOR
from cgmem_nb.engine.tracers import available_tracers

MB = 1000**2


@pytest.fixture(autouse=True)
def fresh_analysis_state() -> None:
    """Each test starts with no holder observations and no leak history: the leak detector
    and the observation log are process-wide, and a test must not see another's leaks."""
    from cgmem_nb.analysis import LEAK_DETECTOR
    from cgmem_nb.session.holders import OBSERVATIONS

    OBSERVATIONS.clear()
    LEAK_DETECTOR.reset()


@pytest.fixture(autouse=True)
def profiler_left_clean() -> Iterator[None]:
    """Fail a test that leaves a session, a tracer or the monitor thread running."""
    was_tracing = tracemalloc.is_tracing()
    yield
    problems = []
    if MEMORY_PROFILER.active_sessions:
        problems.append(f"sessions still running: {MEMORY_PROFILER.active_sessions}")
        for s in reversed(MEMORY_PROFILER.active_sessions):
            s.stop()
    for name, tracer in available_tracers().items():
        if tracer.is_running():
            problems.append(f"the {name} tracer is still running")
            while tracer.is_running():
                tracer.stop()
    if tracemalloc.is_tracing() and not was_tracing:
        problems.append("tracemalloc was left tracing")
        tracemalloc.stop()
    deadline = time.monotonic() + 2
    while MONITOR.running and time.monotonic() < deadline:
        time.sleep(0.01)
    if MONITOR.running:
        problems.append("the monitor thread is still running")
    if problems:
        pytest.fail("the test left the profiler running: " + "; ".join(problems))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run browser tests last: Playwright's sync API keeps an event loop on the main
    thread for the rest of the session, which breaks later ``asyncio.run`` calls."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
