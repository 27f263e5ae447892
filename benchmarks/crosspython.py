"""Benchmark children on one or more interpreters, optionally counted by callgrind.

Shared by ``bench_sampler.py`` and ``run.py``: ``--python`` may be given several times
(e.g. ``.venv/bin/python`` and ``.venv-3.13/bin/python``) so that one run interleaves
the interpreters and their ratios are measured under the same machine conditions.
Under ``--callgrind`` a child runs in ``valgrind --tool=callgrind`` (with one BLAS
thread) and the figure is the number of instructions it executed: exact and repeatable
on a shared machine (two identical numpy runs differ by 0.005%).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def python_label(python: str) -> str:
    """``"3.13.5"`` for an interpreter path."""
    return subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=True
    ).stdout.strip()


def run_child(python: str, argv: list[str], *, callgrind: bool = False, env: dict[str, str] | None = None) -> tuple[dict[str, Any], int | None]:
    """Run ``python argv`` from the checkout; its last stdout line is JSON. With ``callgrind``,
    also return the instructions the whole process executed."""
    full_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), PYTHONHASHSEED="0")
    full_env.update(env or {})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = [python, *argv]
        if callgrind:
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd]
            # OpenBLAS worker threads spin while they wait: their instruction counts follow the
            # timing, not the work (+-1% on an identical numpy run). One thread makes counts exact.
            full_env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} on {python} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        instructions = None
        if callgrind:
            found = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
            instructions = int(found.group(1)) if found else None
    return result, instructions
