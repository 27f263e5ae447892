"""Overhead of profiling, measured against an unprofiled run of the same workload.

Usage:
    .venv/bin/python benchmarks/run.py [--runs 5] [--modes none,sampled,exact] [--workloads a,b]

Each run is a separate process (so one run's memory never helps the next);
modes are interleaved run by run; the table shows medians and the ratio of
each mode's median wall time to the unprofiled median. "report" is the time
from the end of the workload to the finished ProfileResult (snapshot,
grouping, tables, analysis). An empty warm-up session runs first in each profiled
process, as a kernel's first profiled cell would (lazy imports are paid once).
Results are also written to benchmarks/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(workload: str, mode: str) -> None:
    sys.path.insert(0, str(HERE))
    from workloads import WORKLOADS

    import psutil

    func = WORKLOADS[workload]
    import numpy  # noqa: F401 - imported before timing in every mode alike
    import pandas  # noqa: F401

    if mode == "none":
        t0 = time.perf_counter()
        func()
        t1 = time.perf_counter()
        report_s = 0.0
        peak_traced = None
    else:
        from cgmem_nb import MEMORY_PROFILER

        with MEMORY_PROFILER.session("warm-up", tracer=mode):  # type: ignore[arg-type]
            pass  # imports what a first session loads lazily; a kernel pays that once
        t0 = time.perf_counter()
        with MEMORY_PROFILER.session(workload, tracer=mode) as session:  # type: ignore[arg-type]
            func()
            work_end = time.perf_counter()
        t1 = time.perf_counter()
        report_s = t1 - work_end
        assert session.result is not None
        peak_traced = session.result.summary["peak_bytes"]
        if session.result.summary["tracer"] != mode:
            raise SystemExit(f"asked for the {mode} tracer, got {session.result.summary['tracer']}")
    rss_peak = None
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    rss_peak = int(line.split()[1]) * 1024
    except OSError:
        rss_peak = psutil.Process().memory_info().rss
    print(json.dumps({"wall_s": t1 - t0, "report_s": report_s, "rss_peak": rss_peak, "traced_peak": peak_traced}))


def run_once(workload: str, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", workload, mode],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="none,sampled", help="comma-separated: none, sampled, exact")
    parser.add_argument("--workloads", default="pure_python,numpy_temporaries,pandas_strings,notebook_mix")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    modes = args.modes.split(",")
    if "none" not in modes:
        modes.insert(0, "none")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for workload in args.workloads.split(","):
        results[workload] = {m: [] for m in modes}
        for i in range(args.runs):
            for mode in modes if i % 2 == 0 else list(reversed(modes)):
                results[workload][mode].append(run_once(workload, mode))
            print(f"{workload}: run {i + 1}/{args.runs} done", file=sys.stderr)
    rows = []
    print(f"\n{'workload':<20} {'mode':<8} {'wall s':>8} {'ratio':>7} {'report s':>9} {'RSS peak MB':>12} {'RSS ratio':>9}")
    for workload, by_mode in results.items():
        base = statistics.median(r["wall_s"] for r in by_mode["none"])
        base_rss = statistics.median(r["rss_peak"] for r in by_mode["none"])
        for mode, runs in by_mode.items():
            wall = statistics.median(r["wall_s"] for r in runs)
            rep = statistics.median(r["report_s"] for r in runs)
            rss = statistics.median(r["rss_peak"] for r in runs)
            rows.append({"workload": workload, "mode": mode, "wall_s": wall, "ratio": wall / base, "report_s": rep, "rss_peak": rss, "rss_ratio": rss / base_rss})
            print(f"{workload:<20} {mode:<8} {wall:>8.2f} {wall / base:>6.2f}x {rep:>9.3f} {rss / 1e6:>12.1f} {rss / base_rss:>8.2f}x")
    (HERE / "results.json").write_text(json.dumps({"runs": args.runs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
