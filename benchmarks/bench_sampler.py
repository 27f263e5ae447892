"""Overhead of the sampled tracer against no profiling and tracemalloc.

Usage::

    python benchmarks/bench_sampler.py                       # all workloads, 5 rounds
    python benchmarks/bench_sampler.py --rounds 7 --workloads python numpy
    python benchmarks/bench_sampler.py --intervals 16KiB 32KiB 256KiB
    python benchmarks/bench_sampler.py --accuracy             # estimate errors, in-process
    python benchmarks/bench_sampler.py --python .venv/bin/python --python .venv-3.13/bin/python
    python benchmarks/bench_sampler.py --callgrind --python ... # exact: instruction counts

Every (workload, mode) run is a separate process that runs the workload
``--repeat`` times and keeps its fastest run; rounds interleave the modes so that
machine noise spreads evenly, and each figure is the median over rounds. Ratios
are given for process CPU time (the robust figure on a shared machine) and for
wall time.
Modes: ``none`` (unprofiled), ``idle`` (hooks installed, interval 1 TiB so the
countdown never fires: the cost of being chained in), ``sampled:<interval>`` and
``tracemalloc`` (1 frame). Only the workload is timed, not imports or start-up.
The table shows wall-time ratios against ``none`` and the profiler's own memory
(the sampler's C structures; ``tracemalloc.get_tracemalloc_memory()``).

``--python`` (repeatable) runs the children on each interpreter, interleaved within
every round, and adds a table comparing the ratios. ``--callgrind`` replaces timing
by instruction counts: each (interpreter, workload, mode) runs once under valgrind
as is and once with the workload replaced by nothing (imports and tracer start
alike); the difference is the workload's instructions, and the ratio to ``none`` is
exact.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))
from crosspython import python_label, run_child  # noqa: E402
DEPTH = 12  # ProfilerConfig.stack_trace_depth default


def work_python() -> object:
    """Pure-Python, allocation heavy: dicts, strings, lists, churn."""
    out: list[dict[str, Any]] = []
    for i in range(400_000):
        out.append({"id": i, "name": f"user{i}", "tags": [str(i), str(i * 2)], "score": i * 0.5})
        if len(out) > 50_000:
            out = out[25_000:]
    return out


def work_numpy() -> object:
    """numpy with large temporaries (32 MB arrays, several temporaries per step)."""
    import numpy as np

    a = np.random.default_rng(0).random((2000, 2000))
    total = 0.0
    for _ in range(15):
        b = (a * 2.0 + 1.0) ** 2
        c = np.sqrt(b) - a
        total += float(c.sum())
    return a, b, c


def work_pandas() -> object:
    """pandas with string columns, 2M rows: build, transform, group."""
    import numpy as np
    import pandas as pd

    n = 2_000_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"k": np.arange(n) % 1000, "s": [f"item{i % 5000}" for i in range(n)], "v": rng.random(n)})
    df["s2"] = df["s"].str.upper()
    grouped = df.groupby("s")["v"].sum()
    return df, grouped


#: Each returns what it built, so the profiler's memory is read while that is alive.
WORKLOADS: dict[str, Callable[[], object]] = {"python": work_python, "numpy": work_numpy, "pandas": work_pandas}


def _child(workload: str, mode: str, repeat: int, empty: bool = False) -> dict[str, float]:
    """Run one workload under one mode in this process; return seconds and profiler memory.

    ``empty`` does everything but the workload (the baseline of an instruction count)."""
    fn: Callable[[], object] = (lambda: None) if empty else WORKLOADS[workload]
    if workload != "python":
        import numpy  # noqa: F401  - imports are not timed
    if workload == "pandas":
        import pandas  # noqa: F401
    stop: Callable[[], int] = lambda: 0  # noqa: E731
    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start(1)
        stop = lambda: tracemalloc.get_tracemalloc_memory()  # noqa: E731
    elif mode == "idle" or mode.startswith("sampled:"):
        from cgmem_nb.engine import sampled

        tracer = sampled.get_tracer()
        assert tracer is not None, sampled.unavailable_reason()
        tracer.set_interval(sampled.MAX_INTERVAL_BYTES if mode == "idle" else mode.split(":", 1)[1])
        tracer.seed(20261129)
        tracer.start(DEPTH)
        stop = tracer.memory_bytes
    best_wall = best_cpu = float("inf")
    profiler_bytes = 0.0
    for _ in range(repeat):
        began, began_cpu = time.perf_counter(), time.process_time()
        kept = fn()
        best_wall = min(best_wall, time.perf_counter() - began)
        best_cpu = min(best_cpu, time.process_time() - began_cpu)
        profiler_bytes = max(profiler_bytes, float(stop()))
        del kept
    return {"seconds": best_wall, "cpu_seconds": best_cpu, "profiler_bytes": profiler_bytes}


def bench(
    pythons: list[str], workloads: list[str], modes: list[str], rounds: int, repeat: int
) -> dict[str, dict[str, dict[str, list[dict[str, float]]]]]:
    """Run every (interpreter, workload, mode) ``rounds`` times, interleaved: {python: {workload: {mode: runs}}}."""
    results = {p: {w: {m: [] for m in modes} for w in workloads} for p in pythons}  # type: ignore[misc]
    for r in range(rounds):
        for workload in workloads:
            for python in pythons:
                for mode in modes:
                    run, _ = run_child(python, [__file__, "--child", workload, mode, "--repeat", str(repeat)])
                    results[python][workload][mode].append(run)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def bench_callgrind(pythons: list[str], workloads: list[str], modes: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """Instructions of each workload under each mode: {python: {workload: {mode: Ir}}}."""
    out: dict[str, dict[str, dict[str, int]]] = {p: {w: {} for w in workloads} for p in pythons}
    for workload in workloads:
        for python in pythons:
            for mode in modes:
                args = [__file__, "--child", workload, mode, "--repeat", "1"]
                _, full = run_child(python, args, callgrind=True)
                _, empty = run_child(python, [*args, "--empty"], callgrind=True)
                assert full is not None and empty is not None
                out[python][workload][mode] = full - empty
                print(f"{python_label(python)} {workload} {mode}: {full - empty:,} instructions", file=sys.stderr, flush=True)
    return out


def table_callgrind(counts: dict[str, dict[str, dict[str, int]]], modes: list[str]) -> str:
    """Markdown: instructions and ratios against ``none``, one column pair per interpreter."""
    pythons = list(counts)
    head = "| workload | mode | " + " | ".join(f"{python_label(p)} instructions | {python_label(p)} ratio" for p in pythons)
    lines = [head + " |", "| --- | --- |" + " ---: | ---: |" * len(pythons)]
    for workload in next(iter(counts.values())):
        for mode in modes:
            cells = []
            for p in pythons:
                by_mode = counts[p][workload]
                cells.append(f"{by_mode[mode]:,} | {by_mode[mode] / by_mode['none']:.3f}x")
            lines.append(f"| {workload} | {mode} | " + " | ".join(cells) + " |")
    if len(pythons) > 1:
        lines.append("")
        lines.append(compare_ratios({p: {w: {m: c / counts[p][w]["none"] for m, c in by_mode.items()} for w, by_mode in counts[p].items()} for p in pythons}))
    return "\n".join(lines)


def compare_ratios(ratios: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: each interpreter's ratio against the first one's, per (workload, mode)."""
    pythons = list(ratios)
    first = pythons[0]
    head = f"| workload | mode | {python_label(first)} | " + " | ".join(f"{python_label(p)} | difference" for p in pythons[1:])
    lines = [head + " |", "| --- | --- | ---: |" + " ---: | ---: |" * (len(pythons) - 1)]
    for workload, by_mode in ratios[first].items():
        for mode, base in by_mode.items():
            if mode == "none":
                continue
            cells = [f"{ratios[p][workload][mode]:.3f}x | {ratios[p][workload][mode] - base:+.3f}" for p in pythons[1:]]
            lines.append(f"| {workload} | {mode} | {base:.3f}x | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table(results: dict[str, dict[str, dict[str, list[dict[str, float]]]]], modes: list[str]) -> str:
    """Markdown: median CPU and wall seconds, ratios against ``none``, profiler memory; per interpreter."""
    lines = [
        "| python | workload | mode | CPU s | CPU ratio | wall s | wall ratio | profiler MB |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    wall_ratios: dict[str, dict[str, dict[str, float]]] = {}
    for python, by_workload in results.items():
        label = python_label(python)
        wall_ratios[python] = {}
        for workload, by_mode in by_workload.items():
            base_cpu = statistics.median(run["cpu_seconds"] for run in by_mode["none"])
            base_wall = statistics.median(run["seconds"] for run in by_mode["none"])
            wall_ratios[python][workload] = {}
            for mode in modes:
                runs = by_mode[mode]
                cpu = statistics.median(run["cpu_seconds"] for run in runs)
                wall = statistics.median(run["seconds"] for run in runs)
                mem = max(run["profiler_bytes"] for run in runs) / 1e6
                wall_ratios[python][workload][mode] = wall / base_wall
                lines.append(
                    f"| {label} | {workload} | {mode} | {cpu:.3f} | {cpu / base_cpu:.3f}x | {wall:.3f} | {wall / base_wall:.3f}x | {mem:.1f} |"
                )
    if len(results) > 1:
        lines += ["", "Wall-time ratios compared:", "", compare_ratios(wall_ratios)]
    return "\n".join(lines)


def accuracy(intervals: list[str], seeds: int = 40) -> str:
    """Relative error of the live-bytes estimate over seeded runs, as a Markdown table.

    Workloads keep 40 MB alive: 400 x 100 KB bytes, 400 x 100 KB numpy arrays, and
    40,000 x 1 KB bytes; the truth is the bytes the workload line holds.
    """
    import numpy as np

    from cgmem_nb.engine import sampled

    tracer = sampled.get_tracer()
    assert tracer is not None, sampled.unavailable_reason()
    cases: list[tuple[str, Callable[[], object], int]] = [
        ("400 x 100 KB bytes", lambda: [bytes(100_000) for _ in range(400)], 400 * sys.getsizeof(bytes(100_000))),
        ("400 x 100 KB numpy", lambda: [np.empty(12_500) for _ in range(400)], 400 * 100_000),
        ("40k x 1 KB bytes", lambda: [bytes(1000) for _ in range(40_000)], 40_000 * sys.getsizeof(bytes(1000))),
    ]
    lines = ["| interval | workload | mean error | sd | max abs error |", "| --- | --- | ---: | ---: | ---: |"]
    for interval in intervals:
        tracer.set_interval(interval)
        for name, fn, truth in cases:
            errors = []
            for seed in range(seeds):
                tracer.seed(seed + 77)
                tracer.start(1)
                mark = tracer.mark()
                kept = fn()
                snap = tracer.snapshot(mark)
                tracer.stop()
                del kept
                errors.append(max(s.live_bytes for s in snap.stats) / truth - 1)  # the workload line
            lines.append(
                f"| {interval} | {name} | {statistics.mean(errors):+.2%} | {statistics.stdev(errors):.2%} "
                f"| {max(map(abs, errors)):.2%} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="processes per (workload, mode); default 5")
    parser.add_argument("--repeat", type=int, default=2, help="runs inside each process, fastest kept; default 2")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--intervals", nargs="+", default=["16KiB", "32KiB", "256KiB"], help="sampled intervals")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the (slow) tracemalloc mode")
    parser.add_argument("--accuracy", action="store_true", help="measure estimate errors instead of overhead")
    parser.add_argument("--python", action="append", help="interpreter to run the children (repeatable; default: this one)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        workload, mode = args.child
        print(json.dumps(_child(workload, mode, args.repeat, args.empty)))
        return 0
    if args.accuracy:
        print(f"CPython {sys.version.split()[0]}")
        print(accuracy(args.intervals))
        return 0
    pythons = args.python or [sys.executable]
    if args.callgrind:
        modes = ["none", *(f"sampled:{i}" for i in args.intervals)]
        print(table_callgrind(bench_callgrind(pythons, args.workloads, modes), modes))
        return 0
    modes = ["none", "idle", *(f"sampled:{i}" for i in args.intervals)]
    if not args.no_tracemalloc:
        modes.append("tracemalloc")
    results = bench(pythons, args.workloads, modes, args.rounds, args.repeat)
    print(table(results, modes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
