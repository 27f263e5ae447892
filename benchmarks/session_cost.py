"""What a session costs around the work: its fixed cost, and its end in a notebook with a big namespace.

Usage:
    .venv/bin/python benchmarks/session_cost.py [--processes 5] [--sessions 50]
    .venv/bin/python benchmarks/session_cost.py --namespace-gb 2

Fixed cost: each of ``--processes`` fresh processes imports ``cgmem_nb`` (numpy and
pandas imported before, as in a notebook), then runs ``--sessions`` default sessions
around a small allocation. Reported, median over the processes: the import, the first
session from start to result (the monitor thread, the native extension and lazy imports
are paid there), ``summary.stop_s`` of the first session, and the median whole session
and ``stop_s`` of the later ones.

Namespace (``--namespace-gb``): a real IPython shell holds DataFrames with string
columns of about that size; a ``%%memprofile -q`` cell merges two of them. Reported: the
cell unprofiled, the cell profiled, its ``stop_s``, then the first read of
``.recommendations`` (the deferred analysis) and ``%memrecs``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def fixed_child(sessions: int) -> None:
    import numpy  # noqa: F401 - a notebook has these already
    import pandas  # noqa: F401

    t0 = time.perf_counter()
    from cgmem_nb import MEMORY_PROFILER

    t1 = time.perf_counter()
    whole, stops = [], []
    for _ in range(sessions):
        began = time.perf_counter()
        with MEMORY_PROFILER.session() as s:
            block = [bytearray(100) for _ in range(1000)]
        whole.append(time.perf_counter() - began)
        assert s.result is not None
        stops.append(s.result.summary.stop_s)
        del block
    later = whole[1:] or whole
    print(json.dumps({
        "import_s": t1 - t0, "first_s": whole[0], "first_stop_s": stops[0],
        "later_s": statistics.median(later), "later_stop_s": statistics.median(stops[1:] or stops),
    }))


def namespace_child(gb: float) -> None:
    import numpy as np
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_cell("%load_ext cgmem_nb", store_history=True)
    rows = int(gb * 1e9 / 2 / 156)  # two frames of ~156 bytes per row, strings included (deep)
    rng = np.random.default_rng(0)
    for name in ("left", "right"):
        keys = rng.integers(0, rows, rows)
        shell.user_ns[name] = pd.DataFrame({
            "key": keys, "city": [f"city-{k % 500:04d}" for k in keys], "name": [f"name-{k:012d}" for k in keys],
            "value": rng.random(rows),
        })
    cell = "merged = left.head(200_000).merge(right.head(200_000), on='key')\ndel merged\n"

    def run(code: str) -> float:
        began = time.perf_counter()
        res = shell.run_cell(code, store_history=True)
        if res.error_in_exec is not None or res.error_before_exec is not None:
            raise SystemExit(f"cell failed: {res.error_in_exec or res.error_before_exec}")
        return time.perf_counter() - began

    run(cell)  # warm-up: pandas' merge paths
    run("%%memprofile -q\nx = 1\n")  # the first session of the process (lazy imports)
    plain = statistics.median(run(cell) for _ in range(3))
    profiled = statistics.median(run("%%memprofile -q -o r\n" + cell) for _ in range(3))
    result = shell.user_ns["r"]
    began = time.perf_counter()
    result.recommendations
    first_read = time.perf_counter() - began
    memrecs = run("_recs = %memrecs")
    print(json.dumps({
        "namespace_bytes": int(sum(shell.user_ns[n].memory_usage(deep=True).sum() for n in ("left", "right"))),
        "cell_plain_s": plain, "cell_profiled_s": profiled, "stop_s": result.summary.stop_s,
        "analysis_first_read_s": first_read, "memrecs_s": memrecs,
    }))


def spawn(args: list[str]) -> dict[str, float]:
    env_path = str(REPO)
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False,
        env={**__import__("os").environ, "PYTHONPATH": env_path},
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--namespace-gb", type=float, default=None)
    parser.add_argument("--child", choices=["fixed", "namespace"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "fixed":
        fixed_child(args.sessions)
        return
    if args.child == "namespace":
        namespace_child(args.namespace_gb)
        return
    if args.namespace_gb is not None:
        row = spawn(["--child", "namespace", "--namespace-gb", str(args.namespace_gb)])
        for key, value in row.items():
            print(f"{key:<24} {value:,.3f}" if isinstance(value, float) else f"{key:<24} {value:,}")
        return
    runs = [spawn(["--child", "fixed", "--sessions", str(args.sessions)]) for _ in range(args.processes)]
    print(f"{'figure (median of ' + str(len(runs)) + ' processes)':<40} {'seconds':>10}")
    for key in runs[0]:
        print(f"{key:<40} {statistics.median(r[key] for r in runs):>10.4f}")


if __name__ == "__main__":
    main()
