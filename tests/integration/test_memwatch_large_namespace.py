"""``%memwatch on`` with a few hundred MB of frames in the namespace keeps the live views sampled.

The holder observations taken while a cell runs walk the whole namespace. They run on
their own thread, paced to a tenth of the time, and a frame's deep size is measured once
and reused: the monitor thread (the only sampler of the live panel, the dashboard and the
session timelines) keeps its rate.
"""

from __future__ import annotations

import textwrap
import time
from typing import Any, Iterator

import pytest

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.analysis import LEAK_DETECTOR
from cgmem_nb.engine.monitor import MONITOR, Tick
from cgmem_nb.session.history import WATCHER
from cgmem_nb.session.holders import OBSERVATIONS

pytestmark = pytest.mark.integration

# 12 frames of 250,000 rows with a string column of Python objects: about 200 MB, and
# ~0.5 s of GIL-holding work to size them from scratch.
BUILD = """
import numpy as np, pandas as pd
frames = [pd.DataFrame({"s": np.array([f"row {i} of {k}" for i in range(250_000)], dtype=object),
                        "x": np.arange(250_000, dtype=float)}) for k in range(12)]
"""
INTERVAL = 0.05
CELL_S = 2.0


@pytest.fixture(autouse=True)
def clean_state() -> Iterator[None]:
    OBSERVATIONS.clear()
    LEAK_DETECTOR.reset()
    WATCHER.clear()
    yield
    WATCHER.stop()
    OBSERVATIONS.clear()
    LEAK_DETECTOR.reset()


def ok(shell: Any, code: str) -> Any:
    result = shell.run_cell(textwrap.dedent(code), store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    return result.result


def test_memwatch_with_a_large_namespace_keeps_the_monitor_rate_and_the_session_timeline(shell: Any) -> None:
    ok(shell, BUILD)
    size = ok(shell, "sum(int(f.memory_usage(deep=True).sum()) for f in frames)")
    assert size > 150 * 1000**2
    # The most eager setting: observe the holders every 50 ms while a cell runs.
    ok(shell, f"%memwatch on --interval {INTERVAL}")
    ticks: list[float] = []

    def on_tick(tick: Tick) -> None:
        ticks.append(tick.perf)

    sub = MONITOR.subscribe(on_tick, INTERVAL)
    try:
        before = len(OBSERVATIONS.items())
        began = time.perf_counter()
        ok(shell, f"%%memprofile --quiet\nimport time\ntime.sleep({CELL_S})")
        ended = time.perf_counter()
    finally:
        sub.close()
    during = [t for t in ticks if began <= t <= ended]
    expected = (ended - began) / INTERVAL
    # The holders were observed while the cell ran (the observer did its work) ...
    assert len(OBSERVATIONS.items()) - before >= 2
    # ... and the monitor kept at least 60% of its rate (it got ~15% when it walked the
    # namespace itself at every tick).
    assert len(during) >= 0.6 * expected, (len(during), expected)
    last = MEMORY_PROFILER.last_result
    assert last is not None
    timeline = last.timeline
    session_interval = MEMORY_PROFILER.config.sample_interval
    assert len(timeline) >= 0.6 * CELL_S / session_interval, (len(timeline), session_interval)
    assert not timeline["gap"].any()
