"""The sampler's stack walk (public frame API) against the interpreter's own view of the stack.

``traceback.extract_stack()`` on the same line as a sampled allocation is the
ground truth: the sampled stack must list the same (file, line) pairs, innermost
first, on every CPython the sampler runs on. The walk creates frame objects inside
an allocation, so these tests also check what it must leave untouched: the error
indicator, the garbage collector, and no frame object left behind.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
import threading
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cgmem_nb.engine import sampled
from cgmem_nb.engine.protocol import Frame, TraceSnapshot

HERE = str(Path(__file__).resolve())
# Far above the interval: always sampled, with weight == size. Above 32 MiB too, so that
# freeing it does not move glibc's dynamic mmap/trim thresholds under later tests.
BLOCK = 40_000_000

np: Any
try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None

Truth = list[tuple[bytearray, traceback.StackSummary]]


def expected(stack: traceback.StackSummary, depth: int) -> tuple[Frame, ...]:
    """extract_stack() as the tracer reports frames: innermost first, at most ``depth``."""
    return tuple((f.filename, f.lineno or 0) for f in reversed(stack))[:depth]


def sampled_frames(snap: TraceSnapshot, truth: tuple[Frame, ...]) -> list[tuple[Frame, ...]]:
    """Frames of every stat whose innermost frame is the allocating line."""
    return [s.frames for s in snap.stats if s.frames and s.frames[0] == truth[0] and s.live_bytes >= BLOCK]


def check_walk(tracer: sampled.SampledTracer, depth: int, workload: Callable[[Truth], None]) -> tuple[Frame, ...]:
    """Run ``workload`` under the tracer; its sampled stack must equal extract_stack()."""
    out: Truth = []
    tracer.start(depth)
    try:
        mark = tracer.mark()
        workload(out)
        snap = tracer.snapshot(mark)
    finally:
        tracer.stop()
    assert out, "the workload recorded no ground truth"
    truth = expected(out[0][1], depth)
    found = sampled_frames(snap, truth)
    assert found, f"no sample at {truth[0]}; top stats: {[s.frames[:1] for s in snap.stats[:5]]}"
    assert found[0] == truth
    return truth


# -- workloads: the allocation and extract_stack() on one line ----------------------------------


def plain(out: Truth) -> None:
    out.append((bytearray(BLOCK), traceback.extract_stack()))


def recurse(n: int, out: Truth) -> None:
    if n == 0:
        out.append((bytearray(BLOCK), traceback.extract_stack()))
    else:
        recurse(n - 1, out)


def in_generator(out: Truth) -> None:
    def gen() -> Any:
        yield out.append((bytearray(BLOCK), traceback.extract_stack()))

    list(gen())


def in_coroutine(out: Truth) -> None:
    async def coro() -> None:
        await asyncio.sleep(0)
        out.append((bytearray(BLOCK), traceback.extract_stack()))

    asyncio.run(coro())


def in_thread(out: Truth) -> None:
    worker = threading.Thread(target=plain, args=(out,))
    worker.start()
    worker.join()


def in_class_body_and_lambda(out: Truth) -> None:
    class Holder:
        make = staticmethod(lambda: out.append((bytearray(BLOCK), traceback.extract_stack())))
        make()

    assert Holder


def in_exception_handler(out: Truth) -> None:
    try:
        raise ValueError("handled")
    except ValueError:
        out.append((bytearray(BLOCK), traceback.extract_stack()))


# -- the stacks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "workload",
    [plain, in_generator, in_coroutine, in_thread, in_class_body_and_lambda, in_exception_handler],
    ids=lambda f: f.__name__,
)
def test_sampled_stack_is_the_interpreters_stack(tracer: sampled.SampledTracer, workload: Callable[[Truth], None]) -> None:
    truth = check_walk(tracer, 100, workload)
    assert truth[0][0] == HERE and len(truth) > 3


def test_a_deep_stack_is_cut_at_the_depth_innermost_first(tracer: sampled.SampledTracer) -> None:
    truth = check_walk(tracer, 12, lambda out: recurse(40, out))
    assert len(truth) == 12
    assert {name for name, _ in truth} == {HERE}, "the 12 innermost frames are all recurse()"


def test_samples_are_named_and_say_their_domain(tracer: sampled.SampledTracer) -> None:
    ext = importlib.import_module("cgmem_nb.engine._sampler")
    assert ext.STACK_WALK == "public frame API"
    tracer.start(3)
    try:
        first = ext.next_seq()
        kept: list[Any] = [[None] * 1_000_000, bytes(8_000_000)]  # PyMem (list items), PyObject (bytes)
        if np is not None:
            kept.append(np.empty(1_000_000))  # numpy's data handler
        samples = [s for s in ext.samples(first) if s.size >= 7_000_000]
        stacks = [ext.stack(s.stack) for s in samples if s.stack is not None]
    finally:
        tracer.stop()
    assert all(isinstance(s, ext.Sample) for s in samples)
    domains = {s.domain for s in samples}
    assert domains == ({"pymem", "pyobj", "numpy"} if np is not None else {"pymem", "pyobj"})
    assert set(ext.DOMAINS) >= domains
    s = samples[0]
    assert s.live and s.weight == pytest.approx(s.size, rel=1e-6) and s.thread_id == threading.get_ident()
    assert len(stacks) == len(samples) and all(stack[0][0] == HERE for stack in stacks)
    assert tuple(s)[:2] == (s.stack, s.thread_id), "a Sample still unpacks like the tuple it replaced"
    del kept


# -- what the walk must leave alone ------------------------------------------------------------


def test_exceptions_keep_their_tracebacks_while_every_frame_is_sampled(tracer: sampled.SampledTracer) -> None:
    # Raising builds traceback objects while the error indicator is set: each of those
    # allocations may run the walk, which must hand the exception back untouched.
    def fail(n: int) -> None:
        if n == 0:
            raise KeyError("x" * 200)
        fail(n - 1)

    tracer.set_interval(256)
    tracer.start(60)
    try:
        for _ in range(300):
            try:
                fail(25)
            except KeyError as exc:
                tb = traceback.extract_tb(exc.__traceback__)
                assert len(tb) == 27 and tb[-1].name == "fail"
            assert getattr(object(), "missing", None) is None  # AttributeError raised and cleared in C
            with pytest.raises(ValueError, match="invalid literal"):
                int("not a number")
        assert tracer.stats()["samples"] > 1000
    finally:
        tracer.stop()


def test_no_garbage_collection_runs_inside_a_sample(tracer: sampled.SampledTracer) -> None:
    # The walk allocates frame objects, which are GC objects. On 3.11 such an allocation
    # can run a collection on the spot (finalizers: arbitrary Python code inside malloc);
    # the walk must prevent that. A gc callback reads the sampler's re-entrancy flag.
    ext = importlib.import_module("cgmem_nb.engine._sampler")
    inside: list[bool] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            busy = ext.quiet(True)
            ext.quiet(busy)
            inside.append(busy)

    def leaf(i: int) -> list[Any]:
        node: list[Any] = [i, bytes(300)]
        node.append(node)  # cyclic garbage, so collections have work
        return node

    threshold = gc.get_threshold()
    gc.set_threshold(25)
    gc.callbacks.append(on_gc)
    tracer.set_interval(256)
    tracer.start(50)
    try:
        for i in range(30_000):
            leaf(i)
    finally:
        tracer.stop()
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*threshold)
    assert gc.isenabled()
    assert len(inside) > 100, "the workload should have triggered many collections"
    assert not any(inside), f"{sum(inside)} of {len(inside)} collections ran inside a sample"


def test_the_walk_leaves_no_frame_object_behind(tracer: sampled.SampledTracer) -> None:
    def leaf() -> bytes:
        return bytes(2000)

    def frames() -> int:
        gc.collect()
        return sum(isinstance(o, types.FrameType) for o in gc.get_objects())

    tracer.set_interval(256)
    tracer.start(30)
    try:
        for _ in range(2000):
            leaf()  # the walk has now created frame objects for every caller of this loop
        before = frames()
        for _ in range(50_000):
            leaf()
        after = frames()
        taken = tracer.stats()["samples"]
    finally:
        tracer.stop()
    assert taken > 5000
    assert after - before <= 2, f"{after - before} frame objects were left behind"


@pytest.mark.skipif(
    importlib.util.find_spec("_interpreters") is None and importlib.util.find_spec("_xxsubinterpreters") is None,
    reason="no low-level subinterpreter module in this CPython",
)
def test_subinterpreter_allocations_are_sampled_without_a_stack(tracer: sampled.SampledTracer) -> None:
    # From 3.12 a subinterpreter may run under its own GIL, concurrently with the main
    # one; the stack table belongs to the main interpreter's GIL, so its samples carry
    # no stack. The main thread allocates meanwhile.
    interpreters: Any = importlib.import_module(
        "_interpreters" if importlib.util.find_spec("_interpreters") else "_xxsubinterpreters"
    )
    interp = interpreters.create()
    script = "kept = [bytes(100_000) for _ in range(300)]\nfor _ in range(20):\n    [bytes(50_000) for _ in range(100)]\n"
    ext = importlib.import_module("cgmem_nb.engine._sampler")
    tracer.start(10)
    try:
        first = ext.next_seq()
        worker = threading.Thread(target=interpreters.run_string, args=(interp, script))
        worker.start()
        mine = [[bytes(10_000) for _ in range(50)] for _ in range(20)]  # 10 MB: sampled for sure
        while worker.is_alive():
            mine.append([bytes(10_000) for _ in range(50)])
            del mine[:-5]
        worker.join()
        samples = ext.samples(first)
    finally:
        tracer.stop()
        interpreters.destroy(interp)
    theirs = [s for s in samples if s.thread_id == worker.ident and s.size >= 50_000]
    ours = [s for s in samples if s.thread_id == threading.get_ident() and s.stack is not None]
    assert theirs and all(s.stack is None for s in theirs)
    assert ours, "the main interpreter's samples keep their stacks"
