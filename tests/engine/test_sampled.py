"""Tests of the sampled tracer (native byte sampler) against the exact tracer and its rules."""

from __future__ import annotations

import asyncio
import gc
import math
import os
import subprocess
import sys
import threading
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgmem_nb.engine import sampled, sampling
from cgmem_nb.engine.tracers import EXACT_TRACER, TraceSnapshot, Tracer, available_tracers
from cgmem_nb.errors import TracerError

np: Any
try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

REPO = Path(__file__).resolve().parents[2]
HERE = str(Path(__file__).resolve())

pytestmark = pytest.mark.skipif(
    sampled.get_tracer() is None, reason=f"sampled tracer unavailable: {sampled.unavailable_reason()}"
)
needs_numpy = pytest.mark.skipif(np is None, reason="numpy is not installed")


def site_bytes(snap: TraceSnapshot, line: int, *, live: bool = True) -> int:
    """Bytes of stats whose stack passes through this file at ``line``."""
    total = 0
    for stat in snap.stats:
        if (HERE, line) in stat.frames:
            total += stat.live_bytes if live else stat.allocated_bytes
    return total


def line_of(marker: str) -> int:
    """Line number in this file of the line that ends with ``# <marker>``."""
    for number, text in enumerate(Path(HERE).read_text().splitlines(), 1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise LookupError(marker)


def measure(t: Tracer, depth: int, workload: Callable[[], Any]) -> tuple[TraceSnapshot, Any]:
    t.start(depth)
    try:
        mark = t.mark()
        kept = workload()
        snap = t.snapshot(mark)
    finally:
        t.stop()
    return snap, kept


def make_bytes() -> list[bytes]:
    return [bytes(100_000) for _ in range(400)]  # site:bytes


def make_arrays() -> list[Any]:
    return [np.empty(12_500) for _ in range(400)]  # site:numpy


# -- mapping and configuration ---------------------------------------------------------------


def test_rate_maps_to_interval_so_a_4k_block_has_that_chance() -> None:
    for rate in (0.01, 0.1, 0.5, 0.9):
        interval = sampled.interval_for_rate(rate)
        assert 1 - math.exp(-4096 / interval) == pytest.approx(rate, rel=0.01)
    assert sampled.interval_for_rate(0.01) > sampled.interval_for_rate(0.1) > sampled.interval_for_rate(0.5)
    for bad in (0.0, 1.0, -0.5, 1.5, True, "0.1"):
        with pytest.raises(TracerError):
            sampled.interval_for_rate(bad)  # type: ignore[arg-type]


def test_parse_interval_accepts_sizes_and_refuses_nonsense() -> None:
    assert sampled.parse_interval("64 KiB") == 65536
    assert sampled.parse_interval(4096) == 4096
    for bad in ("lots", 10, -5, "2 TiB"):
        with pytest.raises(TracerError):
            sampled.parse_interval(bad)


def test_follows_the_tracer_protocol_and_is_available(tracer: sampled.SampledTracer) -> None:
    assert isinstance(tracer, Tracer)
    assert tracer.name == "sampled" and tracer.estimate is True
    assert available_tracers()["sampled"] is tracer
    with pytest.raises(TracerError):
        tracer.start(0)
    with pytest.raises(TracerError):
        tracer.snapshot(object())


def test_start_is_reference_counted(tracer: sampled.SampledTracer) -> None:
    tracer.start(7)
    tracer.start(3)
    assert tracer.depth() == 7
    tracer.stop()
    assert tracer.is_running() and tracer.stats()["hooks"]["mem"]
    tracer.stop()
    assert not tracer.is_running() and tracer.depth() == 0
    assert tracer.stats()["hooks"] == {"mem": False, "obj": False, "numpy": False, "native": False}
    tracer.stop()  # an extra stop is harmless


# -- accuracy ---------------------------------------------------------------------------------


def test_live_bytes_of_python_objects_match_the_exact_tracer(tracer: sampled.SampledTracer) -> None:
    line = line_of("site:bytes")
    exact, kept = measure(EXACT_TRACER, 1, make_bytes)
    del kept
    estimate, kept = measure(tracer, 5, make_bytes)
    truth = site_bytes(exact, line)
    assert truth > 40_000_000
    assert site_bytes(estimate, line) == pytest.approx(truth, rel=0.05)
    assert estimate.stats[0].frames[0] == (HERE, line), "the top site must be the allocating line"
    assert estimate.estimate and not exact.estimate


@needs_numpy
def test_live_bytes_of_numpy_arrays_match_the_exact_tracer(tracer: sampled.SampledTracer) -> None:
    line = line_of("site:numpy")
    exact, kept = measure(EXACT_TRACER, 1, make_arrays)
    del kept
    estimate, kept = measure(tracer, 5, make_arrays)
    truth = site_bytes(exact, line)
    assert truth >= 40_000_000
    assert site_bytes(estimate, line) == pytest.approx(truth, rel=0.05)
    assert estimate.stats[0].frames[0] == (HERE, line)


def test_estimates_are_unbiased_for_blocks_far_below_the_interval(tracer: sampled.SampledTracer) -> None:
    # 1 KB blocks at a 16 KiB interval: each has a ~6% chance and a ~17 KB weight;
    # one run is off by ~6%, the mean of 40 seeded runs by ~1%.
    tracer.set_interval(16384)
    tracer.start(1)
    estimates = []
    for seed in range(40):
        tracer.seed(1000 + seed)
        kept: list[bytes | None] = [None] * 4000
        mark = tracer.mark()
        for i in range(4000):
            kept[i] = bytes(1000)
        estimates.append(tracer.snapshot(mark).live_bytes)
        del kept
    truth = 4000 * sys.getsizeof(bytes(1000))
    assert sum(estimates) / len(estimates) == pytest.approx(truth, rel=0.04)
    assert len(set(estimates)) > 10, "different seeds must sample differently"
    assert min(estimates) < truth < max(estimates)


def test_a_large_allocation_is_always_sampled_with_its_size(tracer: sampled.SampledTracer) -> None:
    tracer.set_interval(512 * 1024)
    line = line_of("site:big")
    for seed in range(5):
        tracer.seed(seed + 1)
        snap, big = measure(tracer, 3, lambda: bytearray(50_000_000))  # site:big
        [stat] = [s for s in snap.stats if (HERE, line) in s.frames]
        assert stat.live_count == 1
        assert stat.live_bytes == pytest.approx(50_000_000, rel=0.001)
        del big


def test_peak_and_reset_peak(tracer: sampled.SampledTracer) -> None:
    tracer.start(2)
    base = tracer.current()
    block = bytearray(30_000_000)
    del block
    assert tracer.peak() - base >= 29_000_000
    assert tracer.current() - base < 1_000_000
    seen: list[int] = []
    tracer.peaks.add(seen.append)
    tracer.reset_peak()
    assert seen and seen[0] >= 29_000_000
    assert tracer.peak() - tracer.current() < 1_000_000


# -- what a sample carries --------------------------------------------------------------------


def test_samples_carry_the_allocating_thread_ident(tracer: sampled.SampledTracer) -> None:
    line = line_of("site:thread")
    idents: list[int] = []
    kept: list[Any] = []
    together = threading.Barrier(2)  # both alive at once, so their idents differ

    def work() -> None:
        idents.append(threading.get_ident())
        kept.append([bytes(200_000) for _ in range(50)])  # site:thread
        together.wait()

    tracer.start(3)
    mark = tracer.mark()
    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    snap = tracer.snapshot(mark)
    by_thread = {s.thread_id: s.live_bytes for s in snap.stats if (HERE, line) in s.frames}
    assert set(by_thread) == set(idents) and threading.get_ident() not in by_thread
    for ident in idents:
        assert by_thread[ident] == pytest.approx(10_000_000, rel=0.1)


def test_samples_carry_the_thread_tag(tracer: sampled.SampledTracer) -> None:
    line = line_of("site:tag")
    tracer.start(3)
    mark = tracer.mark()
    assert sampled.set_tag("load") is None
    assert sampled.set_tag("model") == "load"
    kept = [bytes(100_000) for _ in range(200)]  # site:tag
    assert sampled.set_tag(None) == "model"
    other = [bytes(100_000) for _ in range(200)]
    snap = tracer.snapshot(mark)
    tagged = {s.tag for s in snap.stats if (HERE, line) in s.frames}
    assert tagged == {"model"}
    assert sum(s.live_bytes for s in snap.stats if s.tag == "model") == pytest.approx(20_000_000, rel=0.1)
    assert sampled.get_tag() is None
    with pytest.raises(TypeError):
        sampled.set_tag(3)  # type: ignore[arg-type]
    del kept, other


def test_freed_blocks_leave_live_but_stay_in_allocated(tracer: sampled.SampledTracer) -> None:
    line = line_of("site:freed")
    tracer.start(3)
    mark = tracer.mark()
    before = tracer.current()
    kept = [bytes(100_000) for _ in range(300)]  # site:freed
    assert tracer.current() - before == pytest.approx(30_000_000, rel=0.1)
    del kept
    gc.collect()
    snap = tracer.snapshot(mark)
    assert site_bytes(snap, line) == 0
    assert site_bytes(snap, line, live=False) == pytest.approx(30_000_000, rel=0.1)
    assert tracer.current() - before < 1_000_000


def test_realloc_moves_the_sample(tracer: sampled.SampledTracer) -> None:
    tracer.set_interval(4096)
    tracer.start(2)
    base = tracer.current()
    buffers = [bytearray() for _ in range(20)]
    for _ in range(200):
        for b in buffers:
            b.extend(b"x" * 1000)  # realloc in place or moved
    assert tracer.current() - base == pytest.approx(20 * 200_000, rel=0.25)
    del buffers, b  # ``b`` still holds the last buffer
    assert abs(tracer.current() - base) < 50_000


@needs_numpy
def test_numpy_handler_is_seen_from_threads_and_asyncio_tasks(tracer: sampled.SampledTracer) -> None:
    try:
        from numpy._core.multiarray import get_handler_name
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import get_handler_name  # type: ignore[no-redef]

    tracer.start(2)
    names: list[str | None] = []
    thread = threading.Thread(target=lambda: names.append(get_handler_name()))
    thread.start()
    thread.join()

    async def handler_name() -> str | None:
        return get_handler_name()

    async def in_task() -> str | None:
        return await asyncio.create_task(handler_name())  # a sibling task with its own context copy

    names.append(asyncio.run(in_task()))
    names.append(get_handler_name())
    assert names == ["cgmem_nb_sampler"] * 3
    mark = tracer.mark()
    arrays = asyncio.run(asyncio.to_thread(lambda: [np.zeros(1_000_000) for _ in range(3)]))
    assert tracer.snapshot(mark).live_bytes == pytest.approx(24_000_000, rel=0.05)
    tracer.stop()
    assert get_handler_name() == "default_allocator"
    del arrays  # freed through numpy's own handler after unhooking


@needs_numpy
def test_numpy_is_not_imported_but_hooked_once_imported() -> None:
    script = """
import sys
from cgmem_nb.engine import sampled
t = sampled.get_tracer()
t.start(3)
assert "numpy" not in sys.modules, "start() must not import numpy"
assert t.stats()["hooks"]["numpy"] is False
import numpy
assert t.stats()["hooks"]["numpy"] is True
mark = t.mark()
kept = numpy.zeros(5_000_000)
assert abs(t.snapshot(mark).live_bytes - 40_000_000) < 2_000_000
t.stop()
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# -- coexistence, fork, stability ----------------------------------------------------------


def test_coexists_with_tracemalloc_started_first(tracer: sampled.SampledTracer) -> None:
    tracemalloc.start(1)
    tracer.start(2)
    block = bytes(20_000_000)
    assert tracemalloc.get_traced_memory()[0] >= 20_000_000
    assert tracer.current() >= 19_000_000
    tracemalloc.stop()  # silently drops our hook, which sat above tracemalloc
    assert tracer.stats()["hooks"]["mem"] is False
    tracer.start(2)  # the next start notices and reinstalls
    assert tracer.stats()["hooks"]["obj"] is True
    mark = tracer.mark()
    more = bytes(20_000_000)
    assert tracer.snapshot(mark).live_bytes >= 19_000_000
    del block, more


def test_coexists_with_tracemalloc_started_second(tracer: sampled.SampledTracer) -> None:
    tracer.start(2)
    tracemalloc.start(1)
    tracer.stop()  # tracemalloc sits above us: we stay as a pass-through
    assert tracer.stats()["hooks"]["mem"] is True and not tracer.is_running()
    block = bytes(10_000_000)
    assert tracemalloc.get_traced_memory()[0] >= 10_000_000
    assert tracer.current() == 0
    tracemalloc.stop()
    tracer.start(2)
    tracer.stop()
    assert tracer.stats()["hooks"] == {"mem": False, "obj": False, "numpy": False, "native": False}
    del block


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_is_reset_and_can_profile(tracer: sampled.SampledTracer) -> None:
    tracer.start(3)
    kept = [bytes(100_000) for _ in range(100)]
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            [bytes(5000) for _ in range(100)]

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
            pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            ok = not tracer.is_running() and tracer.current() == 0
            tracer.start(2)
            more = bytes(10_000_000)
            ok = ok and tracer.current() >= 9_000_000
            tracer.stop()
            del more
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
    finally:
        stop.set()
        worker.join()
    assert os.waitstatus_to_exitcode(status) == 0
    assert tracer.is_running() and tracer.current() >= 9_000_000
    del kept


@pytest.mark.integration
@pytest.mark.parametrize("dev_mode", [True, False], ids=["dev", "plain"])
def test_start_stop_stress_in_a_subprocess(dev_mode: bool) -> None:
    cmd = [sys.executable, *(["-X", "dev"] if dev_mode else []), str(REPO / "benchmarks" / "soak_sampler.py"),
           "--seconds", "3", "--threads", "3"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert '"cycles"' in proc.stdout


def test_unavailable_extension_gives_none_and_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "_loaded", True)
    monkeypatch.setattr(sampling, "_ext", None)
    monkeypatch.setattr(sampling, "_reason", "no compiler")
    monkeypatch.setattr(sampled, "_warned", False)
    with pytest.warns(RuntimeWarning, match="no compiler") as record:
        assert sampled.get_tracer() is None
    message = str(record[0].message)
    assert "exact tracer (tracemalloc)" in message and "slower" in message, "says what the user loses"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sampled.get_tracer() is None
