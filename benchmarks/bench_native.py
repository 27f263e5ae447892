"""Overhead of profiling native-heavy work (Polars, Arrow and DuckDB loops) in a session.

Usage::

    python benchmarks/bench_native.py                 # every installed workload, 7 interleaved pairs
    python benchmarks/bench_native.py --rounds 11 --memray

Each round runs the workload in fresh processes: plain (never profiled), inside a
profiling session (the sampled tracer at its default interval, with its native hooks),
and ``idle``: unprofiled after one empty session, which leaves jemalloc's hooks
installed in Polars, Arrow and DuckDB (they stay for the life of the process, see
docs/native-memory.md). The order rotates each round, and the ratios of the medians
to plain are reported. With ``--memray`` the same work also runs under
``memray.Tracker(native_traces=True)``. The machine
is shared and noisy (±30% wall time): compare medians of interleaved pairs, never
single runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from cgmem_nb import MEMORY_PROFILER  # noqa: E402
from crosspython import run_child  # noqa: E402


def workloads() -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    out: dict[str, Callable[[], Any]] = {}
    try:
        import polars as pl

        df = pl.DataFrame(
            {"k": rng.integers(0, 1000, 2_000_000), "v": rng.random(2_000_000), "s": [f"s{i % 5000}" for i in range(2_000_000)]}
        )

        def polars_loop() -> Any:
            for _ in range(3):
                df.group_by("k").agg(pl.col("v").sum(), pl.col("s").n_unique()).sort("k")
                df.with_columns((pl.col("v") * 2).alias("w")).filter(pl.col("w") > 1.0)

        out["polars"] = polars_loop
    except ImportError:
        pass
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(rng.random(5_000_000))

        def arrow_loop() -> Any:
            for _ in range(5):
                pc.sum(pc.multiply(pc.add(arr, 1.0), 2.0))
                pc.cumulative_sum(arr)

        out["arrow"] = arrow_loop
    except ImportError:
        pass
    try:
        import duckdb

        con = duckdb.connect()

        def duckdb_loop() -> Any:
            for _ in range(3):
                con.sql("select range % 1000 k, sum(range) from range(3000000) group by 1").fetchall()
                con.sql("select range::BIGINT a from range(2000000)").to_arrow_table()

        out["duckdb"] = duckdb_loop
    except ImportError:
        pass
    return out


def timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def child(name: str, mode: str) -> None:
    """Time one workload in this fresh process: ``plain`` (never profiled), ``profiled`` (in a
    session), ``idle`` (unprofiled, after one empty session left jemalloc's hooks installed)
    or ``memray``; print the seconds and the profiler's own memory as JSON."""
    fn = workloads()[name]
    fn()  # warm up
    own = 0
    if mode == "idle":
        with MEMORY_PROFILER.session("prime", tracer="sampled", analyze=False):
            pass
    if mode == "profiled":
        with MEMORY_PROFILER.session("bench", tracer="sampled", analyze=False) as session:
            seconds = timed(fn)
            tracer = session.tracer
            own = int(tracer.memory_bytes()) if tracer is not None else 0
        assert session.result is not None and session.result.summary.native
    elif mode == "memray":
        import memray

        with tempfile.TemporaryDirectory() as d:
            with memray.Tracker(os.path.join(d, "m.bin"), native_traces=True):
                seconds = timed(fn)
    else:
        seconds = timed(fn)
    print(json.dumps({"seconds": seconds, "own": own}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memray", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    modes = ["plain", "profiled", "idle"] + (["memray"] if args.memray else [])
    for name in workloads():
        times: dict[str, list[float]] = {m: [] for m in modes}
        own = 0  # the sampler's own memory (samples, stacks, pointer table, filter) at the end of a session
        for r in range(args.rounds):
            for mode in modes[r % len(modes):] + modes[: r % len(modes)]:  # the order rotates
                out, _ = run_child(sys.executable, [__file__, "--child", name, mode], env={"MEMORY_PROFILER_NATIVE": "1"})
                times[mode].append(out["seconds"])
                own = max(own, out["own"])
        p = statistics.median(times["plain"])
        line = f"{name}: plain {p:.3f} s"
        for mode in modes[1:]:
            m = statistics.median(times[mode])
            line += f", {mode} {m:.3f} s ({m / p:.3f}x)"
        print(line + f", profiler memory {own / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
