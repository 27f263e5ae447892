"""Overhead of the sampled tracer against no profiling and tracemalloc.

Usage::

    python benchmarks/bench_sampler.py                       # all workloads, 5 rounds
    python benchmarks/bench_sampler.py --rounds 7 --workloads python numpy
    python benchmarks/bench_sampler.py --intervals 16KiB 32KiB 256KiB
    python benchmarks/bench_sampler.py --accuracy             # estimate errors, in-process

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
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing
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


def _child(workload: str, mode: str, repeat: int) -> dict[str, float]:
    """Run one workload under one mode in this process; return seconds and profiler memory."""
    fn = WORKLOADS[workload]
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


def _run_child(workload: str, mode: str, repeat: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, __file__, "--child", workload, mode, "--repeat", str(repeat)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{workload}/{mode} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench(
    workloads: list[str], modes: list[str], rounds: int, repeat: int
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Run every workload under every mode ``rounds`` times, interleaved."""
    results: dict[str, dict[str, list[dict[str, float]]]] = {w: {m: [] for m in modes} for w in workloads}
    for r in range(rounds):
        for workload in workloads:
            for mode in modes:
                results[workload][mode].append(_run_child(workload, mode, repeat))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return results


def table(results: dict[str, dict[str, list[dict[str, float]]]], modes: list[str]) -> str:
    """A Markdown table: median CPU and wall seconds, ratios against ``none``, profiler memory."""
    lines = [
        "| workload | mode | CPU s | CPU ratio | wall s | wall ratio | profiler MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for workload, by_mode in results.items():
        base_cpu = statistics.median(run["cpu_seconds"] for run in by_mode["none"])
        base_wall = statistics.median(run["seconds"] for run in by_mode["none"])
        for mode in modes:
            runs = by_mode[mode]
            cpu = statistics.median(run["cpu_seconds"] for run in runs)
            wall = statistics.median(run["seconds"] for run in runs)
            mem = max(run["profiler_bytes"] for run in runs) / 1e6
            lines.append(
                f"| {workload} | {mode} | {cpu:.3f} | {cpu / base_cpu:.3f}x | {wall:.3f} | {wall / base_wall:.3f}x | {mem:.1f} |"
            )
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
    args = parser.parse_args(argv)
    if args.child:
        workload, mode = args.child
        print(json.dumps(_child(workload, mode, args.repeat)))
        return 0
    if args.accuracy:
        print(accuracy(args.intervals))
        return 0
    modes = ["none", "idle", *(f"sampled:{i}" for i in args.intervals)]
    if not args.no_tracemalloc:
        modes.append("tracemalloc")
    results = bench(args.workloads, modes, args.rounds, args.repeat)
    print(table(results, modes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
