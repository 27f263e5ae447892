"""Overhead of profiling native-heavy work (Polars, Arrow and DuckDB loops) in a session.

Usage::

    python benchmarks/bench_native.py                 # every installed workload, 7 interleaved pairs
    python benchmarks/bench_native.py --rounds 11 --memray

Each round runs the workload once plain and once inside a profiling session (the
sampled tracer at its default interval, with its native hooks; the order
alternates), and the ratio of the medians is reported. With ``--memray``
the same work also runs under ``memray.Tracker(native_traces=True)``. The machine
is shared and noisy (±30% wall time): compare medians of interleaved pairs, never
single runs.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memray", action="store_true")
    args = parser.parse_args()
    memray: Any = None
    if args.memray:
        import memray
    for name, fn in workloads().items():
        fn()  # warm up
        plain: list[float] = []
        hooked: list[float] = []
        with_memray: list[float] = []
        own = 0  # the sampler's own memory (samples, stacks, pointer table, filter) at the end of a session
        for r in range(args.rounds):
            for which in ((0, 1) if r % 2 == 0 else (1, 0)):
                if which == 0:
                    plain.append(timed(fn))
                else:
                    with MEMORY_PROFILER.session("bench", tracer="sampled", analyze=False) as session:
                        hooked.append(timed(fn))
                        tracer = session.tracer
                        own = max(own, int(tracer.memory_bytes()) if tracer is not None else 0)
                    assert session.result is not None and session.result.summary.native
            if memray is not None:
                with tempfile.TemporaryDirectory() as d:
                    with memray.Tracker(os.path.join(d, "m.bin"), native_traces=True):
                        with_memray.append(timed(fn))
        p, h = statistics.median(plain), statistics.median(hooked)
        line = f"{name}: plain {p:.3f} s, profiled {h:.3f} s, ratio {h / p:.3f}, profiler memory {own / 1e6:.1f} MB"
        if with_memray:
            m = statistics.median(with_memray)
            line += f", memray native_traces {m:.3f} s ({m / p:.2f}x)"
        print(line, flush=True)


if __name__ == "__main__":
    main()
