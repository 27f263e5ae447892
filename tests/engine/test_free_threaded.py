"""On a free-threaded CPython (3.13t): no tracer that could abort the process, sessions still work.

These tests run only on a free-threaded interpreter (``make test-313t`` builds one and runs
them there); on a GIL build they are skipped as a whole.
"""

from __future__ import annotations

import mmap
import sys
import threading
import tracemalloc
import warnings

import pytest

from cgmem_nb.engine import versions

pytestmark = pytest.mark.skipif(not versions.is_free_threaded(), reason="needs a free-threaded CPython build")

MB = 1000**2


def test_no_tracer_is_offered_and_the_reason_names_the_build() -> None:
    from cgmem_nb.engine import sampled, tracers

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert sampled.get_tracer() is None
        available = tracers.available_tracers()
    assert available == {}
    reason = sampled.unavailable_reason()
    assert reason is not None and sys.version.split()[0] in reason and "free-threaded" in reason
    assert any("record no allocations" in str(w.message) for w in caught), [str(w.message) for w in caught]


def test_the_exact_tracer_refuses_to_start() -> None:
    from cgmem_nb.engine.tracers import EXACT_TRACER
    from cgmem_nb.errors import TracerError

    with pytest.raises(TracerError, match="cpython#126315"):
        EXACT_TRACER.start(1)
    assert not tracemalloc.is_tracing() and not EXACT_TRACER.is_running()


@pytest.mark.parametrize("choice", ["auto", "exact", "sampled"])
def test_a_session_with_allocating_threads_measures_process_figures(choice: str) -> None:
    from cgmem_nb import MEMORY_PROFILER

    kept: list[mmap.mmap] = []
    lock = threading.Lock()

    def work() -> None:
        # Mapped and written here, returned to the system when closed: RSS moves by exactly
        # this much whatever the allocator keeps from earlier tests (mimalloc on these builds).
        block = mmap.mmap(-1, 25 * MB)
        block.write(b"x" * (25 * MB))
        with lock:
            kept.append(block)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with MEMORY_PROFILER.session("ft", tracer=choice) as session:  # type: ignore[arg-type]
            workers = [threading.Thread(target=work) for _ in range(4)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    assert not tracemalloc.is_tracing()
    assert not sys._is_gil_enabled(), "the threads ran without a GIL (nothing imported re-enabled it)"  # type: ignore[attr-defined]
    result = session.result
    assert result is not None
    summary = result.summary
    assert summary["tracer"] == "disabled" and "free-threaded" in (summary["note"] or "")
    assert summary["rss_peak_bytes"] - summary["rss_before_bytes"] >= 90 * MB
    assert summary["rss_after_bytes"] - summary["rss_before_bytes"] >= 90 * MB
    assert len(kept) == 4
    for block in kept:
        block.close()


def test_memprofile_cell_runs_and_says_why_no_line_is_shown() -> None:
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "cgmem_nb")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = shell.run_cell("%%memprofile -o r\nimport mmap\nm = mmap.mmap(-1, 40_000_000)\nm.write(b'y' * 40_000_000)\n7")
        assert res.success and res.result == 7
        summary = shell.user_ns["r"].summary
        assert summary["tracer"] == "disabled" and "free-threaded" in summary["note"]
        assert summary["rss_after_bytes"] - summary["rss_before_bytes"] >= 38 * MB
        shell.user_ns["m"].close()
    finally:
        InteractiveShell.clear_instance()
