"""Cost of ``%memwatch on`` per cell, on a namespace holding about 1 GB.

Each run is a separate process: a fresh IPython shell builds the namespace
(a 400 MB numpy array, a 2-million-row frame with a text column, a list of
100,000 small dicts), then runs 40 small cells, with or without ``%memwatch on``
(no stacks). Runs are interleaved (off, on, off, on, ...); the script prints the
median time per cell of each mode (steady state) and the first watched cell,
which measures the whole namespace once.

    .venv/bin/python benchmarks/memwatch_overhead.py [--runs 5] [--cells 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
ip.history_manager.enabled = True
ip.run_line_magic("load_ext", "cgmem_nb")
ip.run_cell('''
import numpy as np, pandas as pd
arr = np.ones(50_000_000)
df = pd.DataFrame({"n": np.arange(2_000_000), "city": [f"city_{i % 500}" for i in range(2_000_000)]})
rows = [{"id": i, "v": float(i)} for i in range(100_000)]
''', store_history=True)
if sys.argv[1] == "on":
    ip.run_cell("%memwatch on", store_history=True)
cells = int(sys.argv[2])
times = []
for i in range(cells):
    started = time.perf_counter()
    ip.run_cell(f"x{i % 5} = df['n'].head(1000).sum() + {i}\ny = arr[:1000].mean()", store_history=True)
    times.append(time.perf_counter() - started)
# The first watched cell measures the whole namespace; later ones reuse cached sizes.
print(json.dumps({"first_s": times[0], "per_cell_s": sorted(times[1:])[len(times[1:]) // 2]}))
"""


def run(mode: str, cells: int) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(cells)], capture_output=True, text=True, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return float(data["first_s"]), float(data["per_cell_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cells", type=int, default=40)
    args = parser.parse_args()
    first: dict[str, list[float]] = {"off": [], "on": []}
    steady: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for mode in ("off", "on"):
            f, s = run(mode, args.cells)
            first[mode].append(f)
            steady[mode].append(s)
    off, on = statistics.median(steady["off"]), statistics.median(steady["on"])
    f_off, f_on = statistics.median(first["off"]), statistics.median(first["on"])
    print(f"median per cell (cells 2..{args.cells}), {args.runs} runs each: off {off * 1000:.2f} ms, on {on * 1000:.2f} ms, "
          f"added {(on - off) * 1000:.2f} ms ({on / off:.2f}x)")
    print(f"first watched cell (measures the whole namespace): off {f_off * 1000:.1f} ms, on {f_on * 1000:.1f} ms")


if __name__ == "__main__":
    main()
