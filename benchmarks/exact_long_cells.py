"""An --exact profiled cell of 1,000 / 6,000 / 30,000 statements against the same cell unprofiled.

Each size runs in a fresh process with a fresh IPython shell: the cell unprofiled, then under
``%%memprofile --exact``, interleaved, ``--runs`` times; the medians are reported with the
profiled cell's ``summary.duration_s`` and ``summary.report_s`` (snapshots and building the
result). Before issue 14 a cell ran as one code object and tracemalloc's line lookups made
the cost quadratic: 1,000 statements 0.27 s -> 10.4 s, 6,000 -> 212 s, 30,000 no result in 300 s.

    .venv/bin/python benchmarks/exact_long_cells.py [--sizes 1000,6000,30000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.history_manager.enabled = True
    ip.run_line_magic("load_ext", "cgmem_nb")
    n, runs = int(sys.argv[1]), int(sys.argv[2])
    body = "".join(f"x{i} = [0] * 1000\\n" for i in range(n))
    rows = []
    for _ in range(runs):
        t = time.perf_counter(); ip.run_cell(body); plain = time.perf_counter() - t
        t = time.perf_counter(); ip.run_cell("%%memprofile --exact -q -o r\\n" + body); profiled = time.perf_counter() - t
        s = ip.user_ns["r"].summary
        rows.append({"plain": plain, "profiled": profiled, "duration": s.duration_s, "report": s.report_s,
                     "stacks": s.stacks_total})
    print(json.dumps(rows))
    """
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,6000,30000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'statements':>10} {'unprofiled':>11} {'--exact':>9} {'ratio':>7} {'in cell':>9} {'report':>8} {'stacks':>7}")
    for n in (int(x) for x in args.sizes.split(",")):
        done = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.runs)], capture_output=True, text=True, timeout=3600)
        if done.returncode:
            print(done.stderr[-2000:])
            return 1
        rows = json.loads(done.stdout.strip().splitlines()[-1])
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"{n:>10} {med['plain']:>10.2f}s {med['profiled']:>8.2f}s {med['profiled'] / med['plain']:>6.1f}x "
              f"{med['duration']:>8.2f}s {med['report']:>7.2f}s {int(med['stacks']):>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
