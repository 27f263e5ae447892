"""Exact cost of the native hooks per malloc/free pair, in instructions (callgrind).

Usage::

    python benchmarks/callgrind_native.py            # needs valgrind and a C compiler

A small C library (compiled here with ``-fno-builtin`` so the compiler keeps the calls)
runs 200,000 malloc/free pairs of 64 bytes and 20,000 of 100 KB, once without and once
with the sampler and its native hooks (``cgmem_nb.engine._sampler``) at the default
interval. Printed: instructions of the real allocator per pair, and instructions spent
in the hooks' own functions (fast paths, sampling decisions, attribution) and in the
sampler's core (the filter lookup on each free, recording samples).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
C = r"""
#include <stdlib.h>
long churn(long n, size_t size) { long s = 0; for (long i = 0; i < n; i++) { char *p = malloc(size); p[0] = 1; s += p[0]; free(p); } return s; }
"""
SCRIPT = r"""
import ctypes, sys
from cgmem_nb.engine import _sampler as S
from cgmem_nb.engine.sampled import DEFAULT_INTERVAL_BYTES
lib = ctypes.CDLL(sys.argv[1]); lib.churn.argtypes = [ctypes.c_long, ctypes.c_size_t]
if sys.argv[2] == "on":
    S.start(float(DEFAULT_INTERVAL_BYTES), 12)
    S.native_start()
lib.churn(200_000, 64)
lib.churn(20_000, 100_000)
if sys.argv[2] == "on": S.stop()
"""
PAIRS = 220_000


def self_costs(out: str) -> dict[str, int]:
    text = subprocess.run(["callgrind_annotate", "--threshold=100", out], capture_output=True, text=True).stdout
    costs: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+)", line)
        if m:
            costs[m.group(2)] = costs.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return costs


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        src, lib, script = Path(d, "loop.c"), Path(d, "libloop.so"), Path(d, "run.py")
        src.write_text(C)
        script.write_text(SCRIPT)
        subprocess.run(["cc", "-O2", "-fno-builtin", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)
        env = dict(os.environ, PYTHONPATH=str(REPO))
        result = {}
        for mode in ("off", "on"):
            out = str(Path(d, f"cg.{mode}"))
            subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script), str(lib), mode],
                check=True, capture_output=True, env=env,
            )
            result[mode] = self_costs(out)
    def allocator(c: dict[str, int]) -> int:
        return sum(v for k, v in c.items() if re.search(r"malloc\.c:(malloc|free|_int_malloc|_int_free|unlink_chunk)", k))
    hooks = sum(v for k, v in result["on"].items() if re.search(r"(hooks_native|attribution)\.c:", k))
    store = sum(v for k, v in result["on"].items() if "core.c:" in k)
    print(f"allocator: {allocator(result['off']) / PAIRS:.0f} instructions per malloc/free pair")
    print(f"hooks: {hooks / PAIRS:.1f} per pair (fast paths and sampling decisions)")
    print(f"sampler core: {store / PAIRS:.1f} per pair (filter lookups on free, recording samples)")


if __name__ == "__main__":
    main()
