"""Leaks and recommendations the analysis finds reach the event stream (and so the live panel)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.engine.events import LeakDetected, RecommendationGenerated

pytestmark = pytest.mark.integration


def test_a_growing_holder_is_published_once_as_leak_detected(shell: InteractiveShell) -> None:
    received = []
    with MEMORY_PROFILER.subscribe(received.append, types=(LeakDetected, RecommendationGenerated)):
        shell.run_cell("%memwatch on", store_history=True)
        shell.run_cell("hoard = []", store_history=True)
        for _ in range(5):
            shell.run_cell("hoard.append(bytes(20_000_000))", store_history=True)
        shell.run_cell("%memwatch off", store_history=True)
        leaks = MEMORY_PROFILER.detect_leaks()
        MEMORY_PROFILER.detect_leaks()  # the same finding is not published twice
    holders = [leak.holder for leak in leaks]
    assert "hoard" in holders
    published = [e.leak.holder for e in received if isinstance(e, LeakDetected)]
    assert published.count("hoard") == 1
    shell.run_cell("del hoard", store_history=True)
