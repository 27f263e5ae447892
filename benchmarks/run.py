"""Overhead of profiling, measured against an unprofiled run of the same workload.

Usage:
    .venv/bin/python benchmarks/run.py [--runs 5] [--modes none,tracer,sampled,exact] [--workloads a,b]
    .venv/bin/python benchmarks/run.py --modes none,sampled-python,sampled   # the native hooks' share
    .venv/bin/python benchmarks/run.py --python .venv/bin/python --python .venv-3.13/bin/python
    .venv/bin/python benchmarks/run.py --callgrind --python ... --python ...

Each run is a separate process (so one run's memory never helps the next);
modes are interleaved run by run (and interpreters, with several ``--python``);
the table shows medians and the ratio of each mode's median wall time to the
unprofiled median. Modes: ``none`` (unprofiled), ``tracer`` (the sampled tracer
alone, started and stopped around the work at the depth a session gives it, at
least 64 frames; no session), ``sampled`` and ``exact``
(a whole default ``MEMORY_PROFILER.session()`` with that tracer). "report" is the
time from the end of the workload to the finished ProfileResult (the session's
end; its tables and analysis are built when first read, which no mode does). An empty warm-up
session runs first in each profiled process, as a kernel's first profiled cell
would (lazy imports are paid once). Results are also written to
benchmarks/results.json.

``--callgrind`` counts instructions instead (one valgrind run per interpreter,
workload and mode, and one with the profiled block left out: the difference is
the work plus everything the session adds, start, monitor, snapshots and report).
Under valgrind code runs about 50 times slower, so the monitor's tick is
stretched by the same factor (5 s instead of 0.1 s) to keep ticks per unit of
work as they are natively.

``--stack N`` runs each workload N Python frames deeper. A script's workload runs
a few frames from the top of its stack, a notebook cell's about 22 (ipykernel,
tornado, asyncio, IPython), and the sampled tracer walks a stack to its top (at
most 64 frames) at every sample: ``--stack 20`` counts what that walk costs in a
kernel.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from crosspython import python_label, run_child  # noqa: E402

VALGRIND_TICK_S = 5.0


def nested(func: Callable[[], object], frames: int) -> Callable[[], object]:
    """``func`` called from ``frames`` nested Python frames (a kernel's cell runs about 22 deep)."""
    def call(n: int) -> object:
        return func() if n <= 0 else call(n - 1)
    return lambda: call(frames)


def child(workload: str, mode: str, empty: bool, tick_s: float | None, stack: int = 0) -> None:
    from workloads import WORKLOADS

    import psutil

    func = nested(WORKLOADS[workload], stack) if stack else WORKLOADS[workload]
    import numpy  # noqa: F401 - imported before timing in every mode alike
    import pandas  # noqa: F401

    if mode == "none":
        t0 = time.perf_counter()
        if not empty:
            func()
        t1 = time.perf_counter()
        report_s = 0.0
        peak_traced = None
    elif mode == "tracer":
        from cgmem_nb import MEMORY_PROFILER
        from cgmem_nb.engine.sampled import get_tracer
        from cgmem_nb.session.session import SAMPLED_MIN_DEPTH

        tracer = get_tracer()
        if tracer is None:
            raise SystemExit("the sampled tracer is not available here")
        # The depth a default session gives the sampled tracer (at least SAMPLED_MIN_DEPTH frames).
        depth = max(MEMORY_PROFILER.config.stack_trace_depth, SAMPLED_MIN_DEPTH)
        tracer.start(depth)  # warm-up: loads the extension and hooks numpy, as a first session would
        tracer.stop()
        t0 = work_end = time.perf_counter()
        if not empty:
            tracer.start(depth)
            try:
                func()
            finally:
                work_end = time.perf_counter()
                tracer.stop()
        t1 = time.perf_counter()
        report_s = t1 - work_end
        peak_traced = None
    else:
        from cgmem_nb import MEMORY_PROFILER

        settings: dict[str, object] = {}
        if tick_s is not None:
            settings["sample_interval"] = tick_s
        if mode == "sampled-python":  # the sampled tracer without its native hooks
            settings["native_memory"] = False
            mode = "sampled"
        if settings:
            MEMORY_PROFILER.initialize(**settings)
        with MEMORY_PROFILER.session("warm-up", tracer=mode):  # type: ignore[arg-type]
            pass  # imports what a first session loads lazily; a kernel pays that once
        t0 = work_end = time.perf_counter()
        peak_traced = None
        if not empty:
            with MEMORY_PROFILER.session(workload, tracer=mode) as session:  # type: ignore[arg-type]
                func()
                work_end = time.perf_counter()
            assert session.result is not None
            peak_traced = session.result.summary.peak_bytes
            if session.result.summary.tracer != mode:
                raise SystemExit(f"asked for the {mode} tracer, got {session.result.summary.tracer}")
        t1 = time.perf_counter()
        report_s = t1 - work_end
    rss_peak = None
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    rss_peak = int(line.split()[1]) * 1024
    except OSError:
        rss_peak = psutil.Process().memory_info().rss
    print(json.dumps({"wall_s": t1 - t0, "report_s": report_s, "rss_peak": rss_peak, "traced_peak": peak_traced}))


def _args(workload: str, mode: str, *extra: str) -> list[str]:
    return [__file__, "--child", workload, mode, *extra]


def wall(pythons: list[str], workloads: list[str], modes: list[str], runs: int, stack: list[str]) -> list[dict[str, object]]:
    results = {p: {w: {m: [] for m in modes} for w in workloads} for p in pythons}  # type: ignore[var-annotated]
    for workload in workloads:
        for i in range(runs):
            for python in pythons if i % 2 == 0 else list(reversed(pythons)):
                for mode in modes if i % 2 == 0 else list(reversed(modes)):
                    results[python][workload][mode].append(run_child(python, _args(workload, mode, *stack))[0])
            print(f"{workload}: run {i + 1}/{runs} done", file=sys.stderr)
    rows: list[dict[str, object]] = []
    for python, by_workload in results.items():
        for workload, by_mode in by_workload.items():
            base = statistics.median(r["wall_s"] for r in by_mode["none"])
            base_rss = statistics.median(r["rss_peak"] for r in by_mode["none"])
            for mode, mode_runs in by_mode.items():
                wall_s = statistics.median(r["wall_s"] for r in mode_runs)
                rss = statistics.median(r["rss_peak"] for r in mode_runs)
                rows.append({"python": python_label(python), "workload": workload, "mode": mode, "wall_s": wall_s,
                             "ratio": wall_s / base, "report_s": statistics.median(r["report_s"] for r in mode_runs),
                             "rss_peak": rss, "rss_ratio": rss / base_rss})
    return rows


def callgrind(pythons: list[str], workloads: list[str], modes: list[str], stack: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    extra = ["--tick", str(VALGRIND_TICK_S), *stack]
    for workload in workloads:
        for python in pythons:
            counts = {}
            for mode in modes:
                _, full = run_child(python, _args(workload, mode, *extra), callgrind=True)
                _, empty = run_child(python, _args(workload, mode, *extra, "--empty"), callgrind=True)
                assert full is not None and empty is not None
                counts[mode] = full - empty
                print(f"{python_label(python)} {workload} {mode}: {counts[mode]:,} instructions", file=sys.stderr)
            for mode in modes:
                rows.append({"python": python_label(python), "workload": workload, "mode": mode,
                             "instructions": counts[mode], "ratio": counts[mode] / counts["none"]})
    return rows


def print_rows(rows: list[dict[str, object]], exact: bool) -> None:
    if exact:
        print(f"\n{'python':<8} {'workload':<20} {'mode':<8} {'instructions':>16} {'ratio':>7}")
        for r in rows:
            print(f"{r['python']:<8} {r['workload']:<20} {r['mode']:<8} {r['instructions']:>16,} {r['ratio']:>6.3f}x")
    else:
        print(f"\n{'python':<8} {'workload':<20} {'mode':<8} {'wall s':>8} {'ratio':>7} {'report s':>9} {'RSS peak MB':>12} {'RSS ratio':>9}")
        for r in rows:
            print(f"{r['python']:<8} {r['workload']:<20} {r['mode']:<8} {r['wall_s']:>8.2f} {r['ratio']:>6.3f}x "
                  f"{r['report_s']:>9.3f} {r['rss_peak'] / 1e6:>12.1f} {r['rss_ratio']:>8.2f}x")  # type: ignore[operator]
    labels = list(dict.fromkeys(str(r["python"]) for r in rows))
    if len(labels) > 1:
        ratio = {(r["python"], r["workload"], r["mode"]): float(r["ratio"]) for r in rows}  # type: ignore[arg-type]
        print(f"\n{'workload':<20} {'mode':<8} " + " ".join(f"{label:>8}" for label in labels) + "  difference")
        for (python, workload, mode), base in ratio.items():
            if python != labels[0] or mode == "none":
                continue
            others = [ratio[(label, workload, mode)] for label in labels[1:]]
            print(f"{workload:<20} {mode:<8} {base:>7.3f}x " + " ".join(f"{o:>7.3f}x" for o in others)
                  + "  " + " ".join(f"{o - base:+.3f}" for o in others))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--modes", default="none,tracer,sampled", help="comma-separated: none, tracer, sampled, exact")
    parser.add_argument("--workloads", default="pure_python,numpy_temporaries,pandas_strings,notebook_mix,growing_heap")
    parser.add_argument("--python", action="append", help="interpreter for the runs (repeatable; default: this one)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    parser.add_argument("--out", default=str(HERE / "results.json"), help="where to write the rows as JSON")
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--empty", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tick", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stack", type=int, default=0, metavar="FRAMES",
                        help="run each workload this many Python frames deep (a notebook cell runs about 22 deep)")
    args = parser.parse_args()
    if args.child:
        child(*args.child, empty=args.empty, tick_s=args.tick, stack=args.stack)
        return
    modes = args.modes.split(",")
    if "none" not in modes:
        modes.insert(0, "none")
    pythons = args.python or [sys.executable]
    workloads = args.workloads.split(",")
    stack = ["--stack", str(args.stack)] if args.stack else []
    rows = callgrind(pythons, workloads, modes, stack) if args.callgrind else wall(pythons, workloads, modes, args.runs, stack)
    print_rows(rows, args.callgrind)
    Path(args.out).write_text(json.dumps({"runs": 1 if args.callgrind else args.runs, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
