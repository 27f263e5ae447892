"""What each data library really allocates, and who sees it on the right line.

Usage::

    python benchmarks/native_accuracy.py                 # every library that is installed
    python benchmarks/native_accuracy.py --memray        # also memray (memray.Tracker) on the same statements

For each case (one statement that allocates a few hundred MB through a library) it
prints the library's own figure, what a profiling session puts on the statement's
line (retained and peak, the native part, the bytes from worker threads), what it
could not place (``<unknown>``), the RSS growth, and, with ``--memray``, what memray reports:
its peak, the bytes it puts on the statement's line and the bytes it has no Python
stack for. Every case runs in a fresh interpreter. Results are in
``docs/native-memory.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES: dict[str, tuple[str, str, str]] = {
    # name: (setup, statement, the library's own figure of the result, as an expression of `out`)
    "polars with_columns (rayon)": (
        "import numpy as np, polars as pl\ndf = pl.DataFrame({'a': np.arange(20_000_000, dtype=np.int64)})",
        "out = df.with_columns((pl.col('a') * 2).alias('b'), (pl.col('a') + 1).alias('c'))",
        "out.estimated_size() - df.estimated_size()",
    ),
    "polars sort temporary": (
        "import numpy as np, polars as pl\ndf = pl.DataFrame({'a': np.arange(20_000_000, dtype=np.int64)})",
        "out = df.select(pl.col('a').sort(descending=True).sum())",
        "0",
    ),
    "pyarrow compute": (
        "import numpy as np, pyarrow as pa, pyarrow.compute as pc\narr = pa.array(np.arange(30_000_000, dtype=np.int64))",
        "out = pc.multiply(arr, 2)",
        "out.nbytes",
    ),
    "pandas str (Arrow) after pool reuse": (
        "import pandas as pd, pyarrow as pa\nobjs = pd.Series([f'item-{i}' for i in range(3_000_000)], dtype=object)\n"
        "warm = objs.astype('str'); del warm",
        "out = objs.astype('str')",
        "int(out.memory_usage(deep=True, index=False))",
    ),
    "duckdb to_arrow_table": (
        "import duckdb\ncon = duckdb.connect()",
        "out = con.sql('select range::BIGINT a, range * 2 b from range(20000000)').to_arrow_table()",
        "out.nbytes",
    ),
    "torch ones": ("import torch", "out = torch.ones(50_000_000)", "out.element_size() * out.nelement()"),
}

PROBE = """
import json, os, psutil, gc
{setup}
from cgmem_nb import MEMORY_PROFILER
proc = psutil.Process()
gc.collect(); rss0 = proc.memory_info().rss
with MEMORY_PROFILER.session("accuracy", tracer="sampled", analyze=False) as session:
    {statement}  # THE LINE
s = session.result.summary
lines = session.result.lines
line = lines[lines["code"].str.contains("THE LINE", na=False)]
res = dict(own={own}, rss=proc.memory_info().rss - rss0, retained=int(line["retained_bytes"].sum()),
           peak=int(line["peak_bytes"].sum()), native=int(line["native_retained_bytes"].sum()),
           worker=s.worker_bytes, unknown=s.unknown_bytes, session_peak=s.peak_bytes)
print("RESULT " + json.dumps(res))
"""

MEMRAY = """
import json, os, gc, memray
{setup}
path = {path!r}
gc.collect()
with memray.Tracker(path, native_traces={native}):
    {statement}  # THE LINE
line = {line}
reader = memray.FileReader(path)
on_line = no_stack = 0
for rec in reader.get_high_watermark_allocation_records(merge_threads=True):
    frames = rec.stack_trace()
    if not frames:
        no_stack += rec.size
    elif any(f[2] == line and f[1].endswith("case.py") for f in frames):
        on_line += rec.size
kept = sum(r.size for r in reader.get_leaked_allocation_records(merge_threads=True))
print("RESULT " + json.dumps(dict(own={own}, peak=reader.metadata.peak_memory, on_line=on_line, no_stack=no_stack, kept=kept)))
"""


def _run(code: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "case.py"  # a file, so that the profiler can read its lines
        script.write_text(code)
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    result: dict[str, float] = json.loads(line[7:])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memray", action="store_true", help="also run memray on the same statements")
    args = parser.parse_args()
    mb = 1e6
    for name, (setup, statement, own) in CASES.items():
        module = setup.split()[1].rstrip(",")
        try:
            __import__(module)
        except ImportError:
            print(f"{name}: skipped ({module} is not installed)")
            continue
        r = _run(PROBE.format(setup=setup, statement=statement, own=own))
        print(
            f"{name}: own {r['own'] / mb:.1f} MB | on the line: retained {r['retained'] / mb:.1f} "
            f"(native {r['native'] / mb:.1f}), peak {r['peak'] / mb:.1f}; from worker threads {r['worker'] / mb:.1f}, "
            f"<unknown> {r['unknown'] / mb:.1f}, session peak {r['session_peak'] / mb:.1f} | RSS +{r['rss'] / mb:.1f}"
        )
        if args.memray:
            for native in (False, True):
                with tempfile.TemporaryDirectory() as d:
                    code = MEMRAY.format(
                        setup=setup,
                        statement=statement,
                        own=own,
                        native=native,
                        path=os.path.join(d, "m.bin"),
                        line=setup.count("\n") + 7,
                    )
                    m = _run(code)
                print(
                    f"    memray{' native_traces' if native else ''}: peak {m['peak'] / mb:.1f}, on the line "
                    f"{m['on_line'] / mb:.1f}, no Python stack {m['no_stack'] / mb:.1f}, kept {m['kept'] / mb:.1f}"
                )


if __name__ == "__main__":
    main()
