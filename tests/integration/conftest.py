"""Fixtures of the integration tests: a fresh IPython shell with cgmem_nb loaded, a profiler and its dashboard."""

from __future__ import annotations

from typing import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MemoryProfiler, ProfilerConfig
from cgmem_nb.outputs.dashboard import MemoryDashboard


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    """A new InteractiveShell with ``%load_ext cgmem_nb`` done and history on."""
    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    ip.history_manager.enabled = True
    ip.run_line_magic("load_ext", "cgmem_nb")
    try:
        yield ip
    finally:
        ip.reset(new_session=False)
        InteractiveShell.clear_instance()


@pytest.fixture
def profiler() -> MemoryProfiler:
    """A profiler of its own for the test (modules that need other settings override it)."""
    return MemoryProfiler(ProfilerConfig())


@pytest.fixture
def dash(profiler: MemoryProfiler) -> Iterator[MemoryDashboard]:
    """A dashboard server for ``profiler`` on a free loopback port, stopped after the test."""
    d = MemoryDashboard(profiler)
    d.start_server(port=0, quiet=True)
    try:
        yield d
    finally:
        d.stop()
