"""Cost of one sample (stack capture + record) of the native sampler, per CPython version.

Usage::

    python benchmarks/bench_walk.py                    # wall time, ns per sample, both shapes
    python benchmarks/bench_walk.py --callgrind        # exact: instructions per sample (valgrind)
    python benchmarks/bench_walk.py --extension PATH   # another build of _sampler (e.g. an older one)

The workload allocates ``--allocations`` blocks of 1,000 bytes at the bottom of a
Python stack ``--stack`` frames deep, once with the sampler idle (hooks installed,
a 1 TiB interval: no sample) and once sampling at ``--interval`` bytes with
``--depth`` frames per stack. The difference divided by the number of samples
taken is the cost of a sample. Two shapes:

- ``loop``: the allocations come from one long-running frame (the stack is the
  same every time: frame objects, where the walk needs them, exist already);
- ``calls``: each allocation is made in a fresh call of a small function, so a
  sample finds a frame that has never been looked at (the public frame API must
  create its frame object, which is freed when the call returns).

With ``--callgrind`` each shape samples in its own processes under
``valgrind --tool=callgrind --toggle-collect=FUNCTION``, and the figures are the
instructions executed inside the sampler's own functions (callees included)
divided by the samples: the stack capture (walk and interning), the whole slow
path (draw, capture, record) and the teardown of frame objects the walk created. Exact and repeatable, unlike wall time on a shared
machine (whole-process differences are not used: sampling changes glibc malloc's
paths by more than a sample costs).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[1]
IDLE_INTERVAL = float(1 << 40)


def load(extension: str | None) -> ModuleType:
    """The sampler module: the installed one, or the build at ``extension``."""
    if extension is None:
        sys.path.insert(0, str(REPO))
        import cgmem_nb.engine._sampler as module

        return module
    loader = importlib.machinery.ExtensionFileLoader("cgmem_nb.engine._sampler", extension)
    spec = importlib.util.spec_from_loader("cgmem_nb.engine._sampler", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _leaf() -> bytes:
    return bytes(1000)


def _loop(n: int) -> None:
    for _ in range(n):
        bytes(1000)


def _calls(n: int) -> None:
    leaf = _leaf
    for _ in range(n):
        leaf()


def _at_depth(depth: int, fn: Any, n: int) -> None:
    if depth <= 0:
        fn(n)
    else:
        _at_depth(depth - 1, fn, n)


def run(module: ModuleType, shape: str, interval: float, depth: int, stack: int, n: int) -> dict[str, float]:
    """Allocate under the sampler; return seconds and samples taken."""
    fn = _loop if shape == "loop" else _calls
    module.seed(12345)
    module.start(interval, depth)
    try:
        _at_depth(stack, fn, n // 10)  # warm-up: frames, caches, first stacks interned
        before = module.next_seq()
        began = time.perf_counter()
        _at_depth(stack, fn, n)
        seconds = time.perf_counter() - began
        samples = module.next_seq() - before
    finally:
        module.stop()
    return {"seconds": seconds, "samples": float(samples)}


def wall(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Interleaved idle/sampled runs in this process; median ns per sample."""
    module = load(args.extension)
    rows = []
    for shape in ("loop", "calls"):
        per_sample = []
        samples = 0.0
        for _ in range(args.rounds):
            idle = run(module, shape, IDLE_INTERVAL, args.depth, args.stack, args.allocations)
            hot = run(module, shape, args.interval, args.depth, args.stack, args.allocations)
            samples = hot["samples"]
            per_sample.append((hot["seconds"] - idle["seconds"]) / max(samples, 1.0) * 1e9)
        per_sample.sort()
        rows.append({"shape": shape, "samples": samples, "ns_per_sample": per_sample[len(per_sample) // 2]})
    return rows


#: What is counted, by the functions callgrind collects inside (``--toggle-collect``,
#: inclusive of what they call). The patterns match the current sources and the
#: 3.11-only sampler from before the split (``capture_stack``, ``mem_crossed``).
CALLGRIND_FUNCTIONS = {
    "capture": "*capture_stack",  # walk + intern
    "slow_path": "*crossed",  # draw + capture + record
    "frame_teardown": "frame_dealloc",  # frame objects the walk created, freed when their call returns
}


def _callgrind_one(args: argparse.Namespace, shape: str, function: str) -> tuple[int, float]:
    """Instructions executed inside ``function`` (and its callees), and the samples taken."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
               f"--toggle-collect={function}", sys.executable, __file__, "--child", shape, repr(args.interval),
               "--depth", str(args.depth), "--stack", str(args.stack), "--allocations", str(args.allocations)]
        if args.extension:
            cmd += ["--extension", args.extension]
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        samples = json.loads(proc.stdout.strip().splitlines()[-1])["samples"]
        total = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    return (int(total.group(1)) if total else 0), samples


def callgrind(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Instructions per sample inside the sampler's functions, one valgrind run each."""
    rows = []
    for shape in ("loop", "calls"):
        row: dict[str, Any] = {"shape": shape}
        for label, function in CALLGRIND_FUNCTIONS.items():
            count, samples = _callgrind_one(args, shape, function)
            row["samples"] = samples
            row[label] = count / max(samples, 1.0)
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("SHAPE", "INTERVAL"), help=argparse.SUPPRESS)
    parser.add_argument("--extension", help="path of another _sampler build to measure")
    parser.add_argument("--interval", type=float, default=4096.0, help="sampling interval in bytes (default 4096)")
    parser.add_argument("--depth", type=int, default=12, help="frames kept per stack (default 12, the config default)")
    parser.add_argument("--stack", type=int, default=20, help="extra Python frames under the allocating one (default 20)")
    parser.add_argument("--allocations", type=int, default=200_000, help="allocations per run (default 200,000)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved idle/sampled pairs, wall mode (default 7)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions under valgrind instead of timing")
    args = parser.parse_args(argv)
    if args.child:
        shape, interval = args.child
        module = load(args.extension)
        print(json.dumps(run(module, shape, float(interval), args.depth, args.stack, args.allocations)))
        return 0
    print(f"CPython {sys.version.split()[0]}, interval {args.interval:.0f} B, depth {args.depth}, "
          f"stack {args.stack} frames, {args.allocations} allocations, {args.extension or 'this checkout'}")
    if args.callgrind:
        print("instructions per sample (inclusive):\n")
        print("| shape | samples | stack capture | whole slow path | frame teardown |\n| --- | ---: | ---: | ---: | ---: |")
        for row in callgrind(args):
            print(f"| {row['shape']} | {row['samples']:.0f} | {row['capture']:.0f} | {row['slow_path']:.0f} "
                  f"| {row['frame_teardown']:.0f} |")
    else:
        print("wall time per sample (sampled minus idle, median of interleaved pairs):\n")
        print("| shape | samples | ns per sample |\n| --- | ---: | ---: |")
        for row in wall(args):
            print(f"| {row['shape']} | {row['samples']:.0f} | {row['ns_per_sample']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
