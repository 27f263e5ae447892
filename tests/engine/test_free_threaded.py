"""On a free-threaded CPython (3.13t): no tracer that could abort the process, sessions still work.

These tests run only on a free-threaded interpreter (``make test-313t`` builds one and runs
them there); on a GIL build they are skipped as a whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import warnings
from typing import Any

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


# Sessions run in a fresh process each: mimalloc (the allocator of these builds) hands memory
# that earlier tests freed back to the system whenever its purge delay expires, which would
# shrink RSS in the middle of a measurement. The bytes are mapped and written page by page, so
# RSS grows by exactly that much and no large temporary comes and goes.
MAPPED = """
import json, mmap, sys, threading, warnings
MB = 1000**2
CHUNK = b"x" * (1 << 20)

def mapped(n):
    block = mmap.mmap(-1, n)
    for off in range(0, n, len(CHUNK)):
        k = min(len(CHUNK), n - off)
        block[off:off + k] = CHUNK[:k]
    return block
"""

SESSION = MAPPED + """
from cgmem_nb import MEMORY_PROFILER
kept = []
lock = threading.Lock()

def work():
    block = mapped(25 * MB)
    with lock:
        kept.append(block)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    with MEMORY_PROFILER.session("ft", tracer=sys.argv[1]) as session:
        workers = [threading.Thread(target=work) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
import tracemalloc
print(json.dumps({"summary": session.result.summary.to_dict(), "kept": len(kept), "tracing": tracemalloc.is_tracing(),
                  "gil": sys._is_gil_enabled()}, default=str))
"""

CELL = MAPPED + """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "cgmem_nb")
shell.user_ns.update(mapped=mapped, MB=MB)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)
    res = shell.run_cell("%%memprofile -o r\\nm = mapped(40 * MB)\\n7")
print(json.dumps({"ok": res.success, "result": res.result, "summary": shell.user_ns["r"].summary.to_dict()}, default=str))
"""


def run_fresh(script: str, *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("choice", ["auto", "exact", "sampled"])
def test_a_session_with_allocating_threads_measures_process_figures(choice: str) -> None:
    out = run_fresh(SESSION, choice)
    summary = out["summary"]
    assert out["kept"] == 4 and not out["tracing"]
    assert not out["gil"], "the threads ran without a GIL (nothing imported re-enabled it)"
    assert summary["tracer"] == "disabled" and "free-threaded" in (summary["note"] or "")
    assert summary["rss_peak_bytes"] - summary["rss_before_bytes"] >= 98 * MB
    assert summary["rss_after_bytes"] - summary["rss_before_bytes"] >= 98 * MB


def test_memprofile_cell_runs_and_says_why_no_line_is_shown() -> None:
    shell = "import sys\nsys.argv = ['x']\n"  # IPython reads sys.argv
    out = run_fresh(shell + CELL)
    assert out["ok"] and out["result"] == 7
    summary = out["summary"]
    assert summary["tracer"] == "disabled" and "free-threaded" in summary["note"]
    assert summary["rss_after_bytes"] - summary["rss_before_bytes"] >= 39 * MB
