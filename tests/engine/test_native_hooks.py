"""The native hooks of the sampler (``cgmem_nb.engine._sampler``, ``csrc/hooks_native.c``):
relocation patching of every loaded object, jemalloc's hooks inside libraries, Arrow's pool
entry points, driven through the extension's own functions.

Each scenario runs in a fresh interpreter (under ``-X dev``) so that patching the process's
libraries never touches the test runner, and a crash is a failed test, not a dead run. The
ground truth is what the test allocates or what the library itself reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relocation patching is ELF (Linux) only"),
]

try:
    from cgmem_nb.engine import _sampler  # noqa: F401
except ImportError as exc:  # pragma: no cover - the build is optional
    pytest.skip(f"the native sampler is not built ({exc})", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 0.15

C_LIBRARY = r"""
#include <stdlib.h>
#include <string.h>
void *blk_alloc(size_t n) { void *p = malloc(n); if (p) memset(p, 1, n); return p; }
void *blk_calloc(size_t n) { return calloc(1, n); }
void *blk_realloc(void *p, size_t n) { return realloc(p, n); }
int blk_memalign(void **out, size_t n) { return posix_memalign(out, 64, n); }
void blk_free(void *p) { free(p); }
"""

PRELUDE = """
import ctypes, json, os, sys, threading
from cgmem_nb.engine import _sampler as S
MB = 1e6
class probe:
    # The extension's functions, named for what these tests do with them.
    @staticmethod
    def start(interval):
        S.start(float(interval), 8)
        return S.native_start()
    refresh = staticmethod(S.native_start)          # follow new libraries, take back lost slots
    stop = staticmethod(S.stop)
    reset_peak = staticmethod(S.reset_peak)
    objects = staticmethod(S.native_objects)
    pools = staticmethod(S.native_pools)
    counters = staticmethod(S.native_counters)
    after_fork_child = staticmethod(S.after_fork_child)
    @staticmethod
    def running():
        return S.hooks()["native"]
def report(**kw):
    print("RESULT " + json.dumps(kw))
def live(domain="total"):
    return sum(s.weight for s in S.samples(0) if s.live and domain in ("total", s.domain))
def peak(domain="total"):
    # the core keeps one peak, over every domain (these tests allocate little else)
    return S.live()[1]
def worker_bytes():
    main = threading.main_thread().ident
    return sum(s.weight for s in S.samples(0) if s.live and s.thread_id != main)
def load_blk():
    lib = ctypes.CDLL(os.environ["BLK"])
    for name in ("blk_alloc", "blk_calloc", "blk_realloc"):
        getattr(lib, name).restype = ctypes.c_void_p
    lib.blk_realloc.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.blk_free.argtypes = [ctypes.c_void_p]
    return lib
"""


@pytest.fixture(scope="module")
def blk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small C library that allocates with the C heap, compiled for this test."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    d = tmp_path_factory.mktemp("blk")
    src = d / "blk.c"
    src.write_text(C_LIBRARY)
    out = d / "libblk.so"
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(out), str(src)], check=True)
    return out


def run(body: str, blk: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> dict[str, Any]:
    """Run PRELUDE + body in a fresh ``python -X dev``; return what it passed to report()."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env["MEMORY_PROFILER_NATIVE"] = "1"  # these tests are about the hooks: on whatever the default
    if blk is not None:
        full_env["BLK"] = str(blk)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", PRELUDE + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def close(measured: float, truth: float, tolerance: float = TOLERANCE) -> bool:
    return abs(measured - truth) <= tolerance * truth


def test_c_library_loaded_mid_session_is_patched_and_restored(blk: Path) -> None:
    r = run(
        """
        slots_before = probe.start(32768)
        lib = load_blk()                                   # dlopen after start: the hook patches it
        blocks = [lib.blk_alloc(1_000_000) for _ in range(40)]
        held = live("malloc")
        for b in blocks: lib.blk_free(b)
        after_free = live("malloc")
        top = peak("malloc")
        patched = [o for o in probe.objects() if o[0] == os.environ["BLK"]]
        probe.stop()
        restored = [o for o in probe.objects() if o[0] == os.environ["BLK"]]
        probe.reset_peak()
        b = lib.blk_alloc(50_000_000); lib.blk_free(b)      # unpatched again: not seen
        report(held=held, after_free=after_free, top=top, patched=patched, restored=restored,
               after_stop=peak("malloc"), dlopens=probe.counters()["dlopens"])
        """,
        blk,
    )
    assert close(r["held"], 40e6), r
    assert r["after_free"] < 2e6, r
    assert close(r["top"], 40e6), r
    assert r["dlopens"] >= 1
    (path, groups, slots, foreign, failed) = r["patched"][0]
    assert slots >= 2 and failed == 0 and groups & 1  # malloc and free at least, ALLOC group
    assert r["restored"][0][1] == 0 and r["restored"][0][2] == 0
    assert r["after_stop"] < 1e6, r


def test_every_allocation_function_is_followed(blk: Path) -> None:
    r = run(
        """
        lib = load_blk()
        probe.start(32768)
        a = [lib.blk_calloc(2_000_000) for _ in range(10)]
        b = [lib.blk_realloc(None, 1_000_000) for _ in range(10)]
        b = [lib.blk_realloc(x, 3_000_000) for x in b]       # grow: the old block is forgotten
        out = ctypes.c_void_p()
        c = []
        for _ in range(10):
            assert lib.blk_memalign(ctypes.byref(out), 1_000_000) == 0
            c.append(out.value)
        held = live("malloc")
        for x in a + b + c: lib.blk_free(x)
        report(held=held, after=live("malloc"))
        probe.stop()
        """,
        blk,
    )
    assert close(r["held"], 20e6 + 30e6 + 10e6), r
    assert abs(r["after"]) < 2e6, r


def test_fork_child_runs_unhooked_and_parent_keeps_sampling(blk: Path) -> None:
    r = run(
        """
        lib = load_blk()
        probe.start(32768)
        pid = os.fork()
        if pid == 0:
            probe.after_fork_child()
            x = [lib.blk_alloc(1_000_000) for _ in range(20)]
            ok = probe.running() is False and probe.counters()["slots"] == 0
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        blocks = [lib.blk_alloc(1_000_000) for _ in range(20)]
        report(child=os.waitstatus_to_exitcode(status), held=live("malloc"))
        probe.stop()
        """,
        blk,
    )
    assert r["child"] == 0
    assert close(r["held"], 20e6), r


def test_tracemalloc_runs_beside_the_native_hooks(blk: Path) -> None:
    r = run(
        """
        import tracemalloc
        lib = load_blk()
        tracemalloc.start()
        probe.start(32768)
        py = [bytes(100_000) for _ in range(100)]              # Python objects: tracemalloc's
        native = [lib.blk_alloc(1_000_000) for _ in range(30)]  # C heap: ours
        traced = tracemalloc.get_traced_memory()[0]
        report(traced=traced, native=live("malloc"))
        probe.stop(); tracemalloc.stop()
        """,
        blk,
    )
    assert r["traced"] >= 10e6
    assert close(r["native"], 30e6), r


def test_preloaded_allocator_is_followed_once(blk: Path) -> None:
    jemalloc = next((p for p in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2") if os.path.exists(p)), None)
    if jemalloc is None:
        pytest.skip("libjemalloc2 is not installed (apt-get install libjemalloc2)")
    r = run(
        """
        probe.start(32768)
        lib = load_blk()
        blocks = [lib.blk_alloc(1_000_000) for _ in range(40)]
        skipped = [o for o in probe.objects() if "jemalloc" in o[0]]
        report(malloc=live("malloc"), mmap=live("mmap"), skipped=skipped)
        probe.stop()
        """,
        blk,
        env={"LD_PRELOAD": jemalloc},
    )
    assert close(r["malloc"], 40e6), r
    assert r["mmap"] < 1e6, r  # the allocator's own arenas are not counted beside its blocks
    assert r["skipped"] and r["skipped"][0][1] == 0  # the preloaded allocator itself is not patched


def test_memray_on_top_then_gone_leaves_both_working(blk: Path) -> None:
    pytest.importorskip("memray")
    r = run(
        """
        import memray, tempfile
        lib = load_blk()
        probe.start(32768)
        path = os.path.join(tempfile.mkdtemp(), "m.bin")
        with memray.Tracker(path):                          # memray patches over our slots
            a = [lib.blk_alloc(1_000_000) for _ in range(20)]
        reader = memray.FileReader(path)
        for x in a: lib.blk_free(x)
        lost = live("malloc")
        repaired = probe.refresh()                            # memray put libc back: take the slots again
        b = [lib.blk_alloc(1_000_000) for _ in range(20)]
        report(memray_peak=reader.metadata.peak_memory, repaired=repaired, ours=live("malloc"), lost=lost)
        probe.stop()
        """,
        blk,
    )
    assert r["memray_peak"] >= 18e6
    assert r["repaired"] > 0
    assert close(r["ours"], 20e6), r


def test_exit_with_hooks_on_and_threads_allocating(blk: Path) -> None:
    r = run(
        """
        import threading, time
        lib = load_blk()
        probe.start(4096)
        def churn():
            while True:
                lib.blk_free(lib.blk_alloc(100_000))
                bytes(50_000)
        for _ in range(3):
            threading.Thread(target=churn, daemon=True).start()
        time.sleep(0.3)
        report(running=probe.running())                 # and exit without stopping
        """,
        blk,
    )
    assert r["running"] is True


def _needs(*modules: str) -> None:
    for name in modules:
        pytest.importorskip(name)


def test_polars_on_worker_threads_is_counted_by_its_own_size() -> None:
    _needs("polars", "numpy")
    r = run(
        """
        import numpy as np, polars as pl
        df = pl.DataFrame({"a": np.arange(10_000_000, dtype=np.int64)})
        probe.start(32768)
        out = df.with_columns((pl.col("a") * 2).alias("b"), (pl.col("a") + 1).alias("c"))
        own = out.estimated_size() - df.estimated_size()
        report(own=own, pool=live("pool"), worker=worker_bytes(), pools=probe.pools())
        probe.stop()
        """
    )
    assert r["own"] == 160_000_000
    assert close(r["pool"], r["own"]), r
    assert r["worker"] > 0.5 * r["own"], r  # computed on threads that hold no GIL
    assert any(kind == "jemalloc" and state == "hooked" for _, kind, state in r["pools"]), r


def test_a_temporary_freed_inside_one_call_is_in_the_peak() -> None:
    _needs("polars", "numpy")
    r = run(
        """
        import numpy as np, polars as pl
        df = pl.DataFrame({"a": np.arange(10_000_000, dtype=np.int64)})
        probe.start(32768)
        total = df.select(pl.col("a").sort(descending=True).sum())   # sorts an 80 MB copy, keeps 8 bytes
        report(live=live("pool"), peak=peak("pool"))
        probe.stop()
        """
    )
    assert r["live"] < 5e6, r
    assert close(r["peak"], 80e6), r  # the sorted copy lived only inside select()


def test_arrow_compute_result_is_counted_by_the_pool() -> None:
    _needs("pyarrow", "numpy")
    r = run(
        """
        import numpy as np, pyarrow as pa, pyarrow.compute as pc
        arr = pa.array(np.arange(10_000_000, dtype=np.int64))
        pool = pa.default_memory_pool()
        probe.start(32768)
        before = pool.bytes_allocated()
        out = pc.multiply(arr, 2)
        report(own=pool.bytes_allocated() - before, nbytes=out.nbytes, pool=live("pool"), mmap=live("mmap"),
               backend=pool.backend_name)
        probe.stop()
        """
    )
    assert r["nbytes"] == 80_000_000
    assert close(r["pool"], r["own"]), r
    assert r["mmap"] < 1e6, r  # the pool's arenas are not counted beside the data


def test_pandas_arrow_strings_are_counted() -> None:
    _needs("pyarrow", "pandas")
    r = run(
        """
        import pandas as pd
        objs = pd.Series([f"item-{i}" for i in range(1_000_000)], dtype=object)
        probe.start(32768)
        s = objs.astype("str")
        report(own=int(s.memory_usage(deep=True, index=False)), pool=live("pool"), dtype=str(s.dtype),
               storage=getattr(s.dtype, "storage", None))
        probe.stop()
        """
    )
    if r["storage"] != "pyarrow":
        pytest.skip(f"pandas' str dtype is not Arrow-backed here ({r['storage']})")
    assert close(r["pool"], r["own"]), r


def test_duckdb_result_is_counted() -> None:
    _needs("duckdb", "pyarrow")
    r = run(
        """
        import duckdb
        con = duckdb.connect()
        probe.start(32768)
        t = con.sql("select range::BIGINT a, range * 2 b from range(5000000)").to_arrow_table()
        report(own=t.nbytes, total=live("total"))
        probe.stop()
        """
    )
    assert r["own"] >= 80_000_000  # two int64 columns, plus validity bitmaps
    assert close(r["total"], r["own"]), r


def test_torch_cpu_tensor_is_counted() -> None:
    _needs("torch")
    r = run(
        """
        import torch
        probe.start(32768)
        t = torch.ones(20_000_000)
        report(own=t.element_size() * t.nelement(), malloc=live("malloc"))
        probe.stop()
        """,
        timeout=300,
    )
    assert r["own"] == 80_000_000
    assert close(r["malloc"], r["own"]), r


def test_soak_threads_sessions_forks_and_dlopen_under_dev_mode() -> None:
    """benchmarks/soak_native.py for a few seconds: no crash, every check held."""
    proc = subprocess.run(
        [sys.executable, "-X", "dev", str(REPO / "benchmarks" / "soak_native.py"), "--seconds", "5", "--threads", "3"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "MEMORY_PROFILER_NATIVE": "1"},  # on whatever the default
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["dev_mode"] and summary["sessions"] >= 2 and summary["forks"] >= 1, summary
    assert summary["native_sessions"] == summary["sessions"], summary  # every session ran the native hooks
    assert summary["counters"]["slots"] == 0, summary  # everything restored at the end


def test_sessions_start_and_stop_while_duckdb_threads_come_and_go() -> None:
    """jemalloc's hooks inside DuckDB are installed once: installing and removing them at every
    session made jemalloc walk a list of threads that DuckDB's exiting workers had left broken
    (SIGSEGV within about 150 cycles, twice in two runs). 250 cycles must pass."""
    _needs("duckdb")
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak_native.py"), "--duckdb-cycles", "250"],
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "MEMORY_PROFILER_NATIVE": "1"},  # on whatever the default
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-4000:])
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["duckdb_cycles"] == 250, summary
    # DuckDB's allocator was followed through its hooks in every session, not skipped
    assert summary["sessions_with_duckdb_jemalloc_hooked"] == 250, summary


def test_numpy_buffers_and_python_objects_are_counted_once_in_a_session() -> None:
    _needs("numpy")
    r = run(
        """
        import numpy as np
        from cgmem_nb import MEMORY_PROFILER
        with MEMORY_PROFILER.session("once", tracer="sampled", analyze=False) as s:
            arr = np.ones(25_000_000)                          # 200 MB: numpy's handler, then malloc
            objs = [str(i) * 10 for i in range(1_000_000)]     # Python objects in obmalloc's arenas
        st = s.result.stacks
        by = st.groupby("domain")["retained_bytes"].sum().to_dict()
        report(by={k: int(v) for k, v in by.items()}, native=s.result.summary.native,
               objs=sum(sys.getsizeof(o) for o in objs) + sys.getsizeof(objs))
        """
    )
    assert r["native"] is True
    by = r["by"]
    assert close(by.get("numpy", 0), 200e6), r
    assert by.get("c heap", 0) < 2e6, r  # the numpy buffer is not counted again through malloc
    assert by.get("mmap", 0) < 2e6, r  # obmalloc's arenas are not counted beside the objects
    assert close(by.get("python", 0), r["objs"], 0.2), r
