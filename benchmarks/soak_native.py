"""Stability soak for the native hooks (relocation patching, pool hooks) inside real sessions.

Usage::

    python benchmarks/soak_native.py --seconds 600            # long soak
    python -X dev benchmarks/soak_native.py --seconds 5       # what the tests run

Threads allocate through the C heap (numpy buffers: numpy's own malloc slot, and a
small C library compiled for the soak), through PyMem (Python objects) and, where
installed, through Polars (jemalloc on its worker threads), while the main thread
starts and stops profiling sessions (the sampled tracer with its native hooks) at
random intervals, takes snapshots, forks children that allocate and exit, and loads
a new library (``dlopen``) in the middle of a session. Exit status 0 means no crash, no exception and every check held; the last
line is a JSON summary.

``--duckdb-cycles N`` runs N session starts and stops instead, each while two threads
open a DuckDB database with its own worker threads, query it and close it (the threads
of DuckDB's jemalloc come and go). Installing and removing jemalloc's hooks at every
start and stop corrupted that jemalloc's list of threads within about 150 cycles
(SIGSEGV in ``tsd_cleanup`` or ``hook_install``); the hooks now stay installed.

    python benchmarks/soak_native.py --duckdb-cycles 300
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

import numpy as np  # noqa: E402

from cgmem_nb import MEMORY_PROFILER  # noqa: E402
from cgmem_nb.engine import _sampler  # noqa: E402
from cgmem_nb.engine import sampled  # noqa: E402
from cgmem_nb.session.session import Session  # noqa: E402

try:
    import polars as pl
except ImportError:  # optional
    pl = None

C_SOURCE = r"""
#include <stdlib.h>
#include <string.h>
void *soak_alloc(size_t n) { void *p = malloc(n); if (p) memset(p, 7, n < 4096 ? n : 4096); return p; }
void *soak_grow(void *p, size_t n) { return realloc(p, n); }
void soak_free(void *p) { free(p); }
int soak_version(void) { return VERSION; }
"""


def _compile(directory: Path, version: int) -> Path | None:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return None
    src = directory / "soak.c"
    src.write_text(C_SOURCE)
    out = directory / f"libsoak{version}.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", f"-DVERSION={version}", "-o", str(out), str(src)], check=True)
    return out


def _load(path: Path) -> Any:
    lib = ctypes.CDLL(str(path))
    lib.soak_alloc.restype = ctypes.c_void_p
    lib.soak_grow.restype = ctypes.c_void_p
    lib.soak_grow.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.soak_free.argtypes = [ctypes.c_void_p]
    return lib


def _churn(rng: random.Random, stop: threading.Event, errors: list[str], counts: list[int], libs: list[Any]) -> None:
    keep: list[Any] = []
    blocks: list[tuple[Any, int]] = []
    try:
        while not stop.is_set():
            kind = rng.randrange(6)
            if kind == 0:
                keep.append(np.ones(rng.randrange(1, 300_000)))
            elif kind == 1:
                keep.append([str(i) for i in range(rng.randrange(1, 300))])
            elif kind == 2 and libs:
                lib = rng.choice(libs)
                p = lib.soak_alloc(rng.randrange(1, 500_000))
                if rng.random() < 0.3:
                    p = lib.soak_grow(p, rng.randrange(1, 800_000))
                blocks.append((lib, p))
            elif kind == 3 and pl is not None:
                df = pl.DataFrame({"a": np.arange(rng.randrange(1, 200_000))})
                keep.append(df.with_columns((pl.col("a") * 2).alias("b")))
            elif kind == 4:
                keep.append(bytearray(rng.randrange(1, 200_000)))
            else:
                keep.append({i: str(i) for i in range(rng.randrange(1, 200))})
            if len(keep) > 100:
                del keep[: rng.randrange(len(keep))]
            if len(blocks) > 100:
                for lib, p in blocks[:50]:
                    lib.soak_free(p)
                del blocks[:50]
            counts[0] += 1
        for lib, p in blocks:
            lib.soak_free(p)
    except Exception as exc:  # pragma: no cover - reported to the caller
        errors.append(repr(exc))


def soak(seconds: float, threads: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="cgmem-soak-"))
    libs: list[Any] = []
    first = _compile(tmp, 1)
    if first is not None:
        libs.append(_load(first))
    tracer = sampled.get_tracer()
    assert tracer is not None, sampled.unavailable_reason()
    stop = threading.Event()
    errors: list[str] = []
    counts = [[0] for _ in range(threads)]
    workers = [
        threading.Thread(target=_churn, args=(random.Random(seed + i), stop, errors, counts[i], libs), daemon=True)
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    sessions = forks = dlopens = native_sessions = 0
    session: Session | None = None
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and not errors:
            action = rng.randrange(6)
            if action == 0:
                if session is not None:
                    result = session.stop()
                    assert result.summary.native, result.summary
                    session = None
                else:
                    interval = rng.choice([4096, 32768, 262144])
                    session = MEMORY_PROFILER.session("soak", tracer="sampled", interval=interval, analyze=False)
                    session.start()
                    native_sessions += bool(_sampler.hooks()["native"])
                    sessions += 1
            elif action == 1:
                pid = os.fork()
                if pid == 0:
                    try:  # the tracer's fork handler has reset everything
                        x = [np.ones(10_000) for _ in range(100)]
                        os._exit(0 if not _sampler.hooks()["native"] and len(x) == 100 else 3)
                    except BaseException:
                        os._exit(4)
                _, status = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0, f"child exited with {status}"
                forks += 1
            elif action == 2 and first is not None and session is not None and dlopens < 20:
                path = _compile(tmp, 2 + dlopens)  # a library the process has never seen
                assert path is not None
                lib = _load(path)
                assert lib.soak_version() == 2 + dlopens
                p = lib.soak_alloc(2_000_000)
                lib.soak_free(p)
                libs.append(lib)
                dlopens += 1
            elif action == 3:
                gc.collect()
            elif action == 4 and session is not None:
                session.checkpoint()
                tracer.snapshot(tracer.mark())
                _sampler.native_start()  # while running: follow new libraries, take back lost slots
            else:
                time.sleep(rng.random() * 0.02)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
        if session is not None:
            session.stop()
    assert not errors, errors
    assert not _sampler.hooks()["native"] and _sampler.native_counters()["slots"] == 0
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "seconds": seconds,
        "threads": threads,
        "sessions": sessions,
        "native_sessions": native_sessions,
        "forks": forks,
        "dlopens": dlopens,
        "allocating_loops": sum(c[0] for c in counts),
        "counters": _sampler.native_counters(),
        "dev_mode": sys.flags.dev_mode,
    }


def _duckdb_query(threads: int) -> None:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"SET threads TO {threads}")
        con.execute("SELECT sum(i) FROM range(2000000) t(i)").fetchall()
    finally:
        con.close()


def duckdb_cycles(cycles: int) -> dict[str, Any]:
    """Session starts and stops while DuckDB's worker threads come and go."""
    import duckdb  # noqa: F401  (loaded before the first session: its jemalloc gets hooked)

    hooked = 0
    for i in range(cycles):
        others = [threading.Thread(target=_duckdb_query, args=(4,)) for _ in range(2)]
        for t in others:
            t.start()
        with MEMORY_PROFILER.session("duckdb", tracer="sampled", analyze=False):
            _duckdb_query(3)
            hooked += any(p["kind"] == "jemalloc" and p["state"] == "hooked" for p in sampled.get_tracer().stats()["native_pools"])
        for t in others:
            t.join()
    return {"duckdb_cycles": cycles, "sessions_with_duckdb_jemalloc_hooked": hooked, "counters": _sampler.native_counters()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duckdb-cycles", type=int, default=0, help="session starts and stops while DuckDB threads come and go")
    args = parser.parse_args()
    if args.duckdb_cycles:
        print(json.dumps(duckdb_cycles(args.duckdb_cycles)))
    else:
        print(json.dumps(soak(args.seconds, args.threads, args.seed)))


if __name__ == "__main__":
    main()
