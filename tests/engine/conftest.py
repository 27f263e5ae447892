"""Fixtures of the engine tests."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest

from cgmem_nb.engine import sampled


@pytest.fixture
def tracer() -> Iterator[sampled.SampledTracer]:
    """The process-wide sampled tracer, stopped and at the default interval afterwards."""
    t = sampled.get_tracer()
    if t is None:
        pytest.skip(f"sampled tracer unavailable: {sampled.unavailable_reason()}")
    assert not t.is_running(), "a previous test left the sampled tracer running"
    t.set_interval(sampled.DEFAULT_INTERVAL_BYTES)
    t.seed(20240607)
    yield t
    while t.is_running():
        t.stop()
    t.set_interval(sampled.DEFAULT_INTERVAL_BYTES)
    if tracemalloc.is_tracing():
        tracemalloc.stop()
