"""Cost of ``%memwatch on`` over a notebook of cells: wall time per cell, or instructions.

Each run is a separate process: a fresh IPython ``InteractiveShell`` loads cgmem_nb,
builds a namespace (a numpy array, a frame with a text column, a list of small
dicts), then runs its cells, with or without ``%memwatch on`` (no stacks).

Wall time (the default): a namespace of about 1 GB (a 400 MB array, a 2-million-row
frame, 100,000 dicts) and 40 ``tiny`` cells; runs are interleaved (off, on, off,
on, ...) and the script prints the median time per cell of each mode (steady state)
and the first watched cell, which measures the whole namespace once.

``--callgrind`` counts instructions under ``valgrind --tool=callgrind`` instead,
with a tenth of that namespace (a 40 MB array, a 200,000-row frame, 10,000 dicts)
and a ``notebook`` of cells that do work (filter, groupby, string lengths, a
numpy slice, a Python loop; every fifth cell keeps a new frame under one of three
names). One more process runs the setup alone; its count is subtracted from
every run, so what is compared is the cells themselves (and ``%memwatch on``)
plain and watched: the first watched cell measures the whole namespace, later ones reuse
the cached sizes of what did not change and measure what did. Run with ``--cells
N`` and ``2N``, the difference gives the steady cost of one more watched cell.
The watcher's in-cell interval (30 s by default) is stretched 50 times under
valgrind, as ``run.py`` stretches the monitor's tick, so it stays out of cells
this short in both settings.

    .venv/bin/python benchmarks/memwatch_overhead.py [--runs 5] [--cells 40]
    .venv/bin/python benchmarks/memwatch_overhead.py --callgrind [--cells 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from crosspython import python_label, run_child  # noqa: E402

#: Native interval of in-cell observations (ProfilerConfig.leak_detection_interval) times
#: valgrind's slow-down, as run.py stretches the monitor's tick.
VALGRIND_INTERVAL_S = 30.0 * 50

CELLS = {
    "tiny": ["x{i5} = df['n'].head(1000).sum() + {i}\ny = arr[:1000].mean()"],
    "notebook": [
        "kept{i3} = df[df['n'] % {m} == 0].copy()",
        "totals = df.groupby('city')['n'].agg(['sum', 'mean'])",
        "lengths = int(df['city'].str.len().sum()) + {i}",
        "y = float(arr[{i} : {i} + 500_000].mean())",
        "ids = [r['id'] * 2 for r in rows[:5_000]]",
    ],
}

CHILD = r"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
mode, kind, cells, scale, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
sources = json.loads(sys.argv[6])
ip = InteractiveShell.instance()
ip.history_manager.enabled = True
ip.run_line_magic("load_ext", "cgmem_nb")
ip.run_cell(f'''
import numpy as np, pandas as pd
arr = np.ones(int(50_000_000 * {scale}))
n = int(2_000_000 * {scale})
df = pd.DataFrame({{"n": np.arange(n), "city": [f"city_{{i % 500}}" for i in range(n)]}})
rows = [{{"id": i, "v": float(i)}} for i in range(int(100_000 * {scale}))]
''', store_history=True)
if cells == 0:  # the setup only: subtracted from the instruction counts
    print(json.dumps({}))
    raise SystemExit
if mode == "on":
    ip.run_cell("%memwatch on" + ("" if interval == "default" else f" --interval {interval}"), store_history=True)
times = []
for i in range(cells):
    src = sources[i % len(sources)].format(i=i, i3=(i // len(sources)) % 3, i5=i % 5, m=7 + i % 5)
    started = time.perf_counter()
    result = ip.run_cell(src, store_history=True)
    times.append(time.perf_counter() - started)
    result.raise_error()
from cgmem_nb.session.history import WATCHER
if mode == "on" and len(WATCHER.records) != cells:
    raise SystemExit(f"memwatch recorded {len(WATCHER.records)} cells of {cells}")
# The first watched cell measures the whole namespace; later ones reuse cached sizes.
print(json.dumps({"first_s": times[0], "per_cell_s": sorted(times[1:])[len(times[1:]) // 2]}))
"""


def child_args(mode: str, kind: str, cells: int, scale: float, interval: str) -> list[str]:
    return ["-c", CHILD, mode, kind, str(cells), str(scale), interval, json.dumps(CELLS[kind])]


def wall(args: argparse.Namespace) -> None:
    first: dict[str, list[float]] = {"off": [], "on": []}
    steady: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for mode in ("off", "on"):
            data, _ = run_child(sys.executable, child_args(mode, args.kind or "tiny", args.cells, args.scale or 1.0, "default"))
            first[mode].append(float(data["first_s"]))
            steady[mode].append(float(data["per_cell_s"]))
    off, on = statistics.median(steady["off"]), statistics.median(steady["on"])
    f_off, f_on = statistics.median(first["off"]), statistics.median(first["on"])
    print(f"median per cell (cells 2..{args.cells}), {args.runs} runs each: off {off * 1000:.2f} ms, on {on * 1000:.2f} ms, "
          f"added {(on - off) * 1000:.2f} ms ({on / off:.2f}x)")
    print(f"first watched cell (measures the whole namespace): off {f_off * 1000:.1f} ms, on {f_on * 1000:.1f} ms")


def callgrind(args: argparse.Namespace) -> None:
    kind, scale, interval = args.kind or "notebook", args.scale or 0.1, str(VALGRIND_INTERVAL_S)

    def count(mode: str, cells: int) -> int:
        _, instructions = run_child(sys.executable, child_args(mode, kind, cells, scale, interval), callgrind=True)
        assert instructions is not None
        print(f"{mode} {cells} cells: {instructions:,} instructions", file=sys.stderr)
        return instructions

    setup = count("off", 0)
    sizes = (args.cells, 2 * args.cells)
    counts = {(mode, n): count(mode, n) - setup for n in sizes for mode in ("off", "on")}
    print(f"\n{python_label(sys.executable)}, {kind} cells, namespace scale {scale} "
          f"(instructions of the cells, the setup's {setup:,} subtracted)")
    print(f"{'cells':>6} {'plain':>16} {'%memwatch on':>16} {'ratio':>7}")
    for n in sizes:
        print(f"{n:>6} {counts['off', n]:>16,} {counts['on', n]:>16,} {counts['on', n] / counts['off', n]:>6.3f}x")
    more_off = counts["off", sizes[1]] - counts["off", sizes[0]]
    more_on = counts["on", sizes[1]] - counts["on", sizes[0]]
    first = counts["on", sizes[0]] - counts["off", sizes[0]] - (more_on - more_off)
    print(f"steady state, cells {sizes[0] + 1}..{sizes[1]}: {more_off // args.cells:,} instructions a cell plain, "
          f"{more_on // args.cells:,} watched ({more_on / more_off:.3f}x, +{(more_on - more_off) // args.cells:,} a cell)")
    print(f"turning it on and the first watched cells beyond that: +{first:,} instructions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs per mode (wall time)")
    parser.add_argument("--cells", type=int, default=None, help="cells per run (default 40; 30 and 60 with --callgrind)")
    parser.add_argument("--kind", choices=sorted(CELLS), default=None, help="the cells (default tiny; notebook with --callgrind)")
    parser.add_argument("--scale", type=float, default=None, help="namespace size, 1.0 = about 1 GB (default 1.0; 0.1 with --callgrind)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    args = parser.parse_args()
    if args.callgrind:
        args.cells = args.cells or 30
        callgrind(args)
    else:
        args.cells = args.cells or 40
        wall(args)


if __name__ == "__main__":
    main()
