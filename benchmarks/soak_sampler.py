"""Stability soak for the sampled tracer (cgmem_nb.engine._sampler).

Usage::

    python benchmarks/soak_sampler.py --seconds 600            # long soak
    python -X dev benchmarks/soak_sampler.py --seconds 3       # what the tests run

Several threads allocate (Python objects, numpy arrays, reallocs, exceptions,
tags) while the main thread starts and stops the sampled tracer at random, takes
snapshots, runs ``gc.collect()`` and switches tracemalloc on and off under it.
Exit status 0 means no crash, no exception and every check held; the last line is
a JSON summary.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run from a checkout without installing

try:
    import numpy as np
except ImportError:  # numpy is optional for the soak
    np = None  # type: ignore[assignment]

from cgmem_nb.engine import sampled


class _Boom(Exception):
    pass


def _churn(rng: random.Random, stop: threading.Event, errors: list[str], counts: list[int]) -> None:
    """Allocate and free a mix of blocks until ``stop`` is set."""
    keep: list[Any] = []
    try:
        while not stop.is_set():
            kind = rng.randrange(7)
            if kind == 0:
                keep.append([str(i) for i in range(rng.randrange(1, 500))])
            elif kind == 1:
                keep.append(bytes(rng.randrange(1, 300_000)))
            elif kind == 2 and np is not None:
                keep.append(np.ones(rng.randrange(1, 200_000)))
            elif kind == 3:
                buf = bytearray()
                for _ in range(rng.randrange(1, 50)):
                    buf.extend(b"x" * rng.randrange(1, 5000))  # realloc path
                keep.append(buf)
            elif kind == 4:
                try:
                    raise _Boom("x" * rng.randrange(1, 1000))
                except _Boom as exc:
                    keep.append(exc.args)
            elif kind == 5:
                prev = sampled.set_tag(rng.choice(["load", "model", None]))
                keep.append({i: i for i in range(rng.randrange(1, 300))})
                sampled.set_tag(prev)
            else:
                keep.append(type("T", (), {"a": 1})())  # a class: new code/type objects
            if len(keep) > 200:
                del keep[: rng.randrange(len(keep))]
            counts[0] += 1
    except Exception as exc:  # pragma: no cover - reported to the caller
        errors.append(repr(exc))


def soak(seconds: float, threads: int, seed: int) -> dict[str, Any]:
    """Run the soak and return a summary (raises AssertionError on a failed check)."""
    tracer = sampled.get_tracer()
    if tracer is None:
        raise SystemExit(f"sampled tracer unavailable: {sampled.unavailable_reason()}")
    rng = random.Random(seed)
    stop = threading.Event()
    errors: list[str] = []
    counts = [0]
    workers = [
        threading.Thread(target=_churn, args=(random.Random(seed + i), stop, errors, counts), daemon=True)
        for i in range(threads)
    ]
    for w in workers:
        w.start()
    cycles = snapshots = tm_cycles = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            tracer.start(rng.randrange(1, 30))
            tracer.set_interval(rng.choice([4096, 32768, 262144]))
            cycles += 1
            mark = tracer.mark()
            for _ in range(rng.randrange(1, 4)):
                time.sleep(rng.random() * 0.02)
                snap = tracer.snapshot(mark)
                assert snap.live_bytes >= 0 and all(s.live_bytes <= s.allocated_bytes + 1 for s in snap.stats)
                snapshots += 1
            if rng.random() < 0.3:
                gc.collect()
            if rng.random() < 0.25:
                tm_cycles += 1
                if rng.random() < 0.5:
                    tracemalloc.start(1)
                    tracer.start(5)  # nested start on top of tracemalloc
                    time.sleep(0.005)
                    tracemalloc.stop()  # drops our hook if it was above tracemalloc
                    tracer.stop()
                else:
                    tracemalloc.start(1)
                    time.sleep(0.005)
                    tracer.stop()  # tracemalloc above us: we stay as a pass-through
                    tracemalloc.stop()
                    continue
            tracer.stop()
    finally:
        stop.set()
        for w in workers:
            w.join(10)
        while tracer.is_running():
            tracer.stop()
    assert not errors, errors
    assert tracer.current() == 0
    tracer.start(1)  # a pass-through left under tracemalloc is now on top again:
    tracer.stop()  # one start/stop must unhook it
    hooks = tracer.stats()["hooks"]
    assert hooks == {"mem": False, "obj": False, "numpy": False, "native": False}, hooks
    return {"cycles": cycles, "snapshots": snapshots, "tracemalloc_cycles": tm_cycles,
            "allocation_rounds": counts[0], "hooks_after": hooks, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to soak (default 60)")
    parser.add_argument("--threads", type=int, default=3, help="allocating threads (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    summary = soak(args.seconds, args.threads, args.seed)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
