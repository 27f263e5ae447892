"""Cost of ``%%memprofile --dask`` on a Dask graph: wall time and the plugin's memory on each worker.

One ``distributed.LocalCluster`` (2 worker processes, 1 thread each, loopback, no
dashboard) serves every run. The workload is a graph of ``--tasks`` tasks of about
10 ms each (numpy: draw, sort, sum; about 1.2 MB allocated per task) and one task
that sums their results. A *plain* run submits it and waits for the sum; a
*profiled* run does the same inside ``cgmem_nb.dask.session(client)`` (what
``%%memprofile --dask`` runs: the kernel's session, the plugin registered on every
worker, the readings streamed, the results collected and merged), timed from
before the session starts to after the merged result exists. Runs are
interleaved (plain, profiled, plain, ...) after one warm-up of each; the script
prints the medians of wall time and of CPU time (the kernel's process, which
holds the scheduler of a LocalCluster, plus every worker: steadier than wall time
on a shared machine) and their ratios.

Memory of the plugin on each worker, read inside the worker while the last
profiled session still runs (``client.run``): the sampler's own structures
(``SampledTracer.memory_bytes()``: samples, stacks, pointer table) plus the
recorder's Python state (task rows, readings; ``cgmem_nb.sizing.deep_size``);
and the worker's RSS after the last plain run against after the last profiled
run (the process-level figure, noisier: it includes what the allocator keeps).

    .venv/bin/python benchmarks/dask_overhead.py [--runs 7] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

HERE = Path(__file__).resolve().parent


def task(i: int) -> float:
    """About 10 ms of numpy work on this machine, with allocations the tracer samples."""
    values = np.random.default_rng(i).random(150_000)
    values.sort()
    return float(values[:100].sum())


def total(parts: list[float]) -> float:
    return float(sum(parts))


def run(client: Any, tasks: int) -> float:
    futures = client.map(task, range(tasks), pure=False)
    return float(client.submit(total, futures, pure=False).result())


def plugin_memory(dask_worker: Any) -> dict[str, int]:
    """Bytes the cgmem_nb plugin holds on this worker now (called with client.run during a session)."""
    from cgmem_nb.integrations.dask.protocol import PLUGIN_NAME
    from cgmem_nb.sizing import deep_size

    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    recorder = getattr(plugin, "recorder", None)
    if recorder is None:
        return {"sampler": 0, "python": 0, "tasks": 0}
    tracer = recorder.tracer
    sampler = int(tracer.memory_bytes()) if hasattr(tracer, "memory_bytes") else 0
    python = deep_size(recorder.done) + deep_size(recorder.timeline) + deep_size(recorder.running)
    return {"sampler": sampler, "python": python, "tasks": len(recorder.done)}


def rss(dask_worker: Any) -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def cpu(dask_worker: Any = None) -> float:
    """CPU seconds (user + system) of this process so far."""
    import psutil

    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def cluster_cpu(client: Any) -> float:
    """CPU seconds of this process (the client and, for a LocalCluster, the scheduler), every worker,
    and a scheduler of its own."""
    total = cpu() + sum(client.run(cpu).values())
    if not isinstance(client.cluster, distributed_local_cluster()):
        total += float(client.run_on_scheduler(cpu))
    return total


def distributed_local_cluster() -> type:
    from distributed import LocalCluster

    return LocalCluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument(
        "--layout", choices=("local", "processes"), default="local",
        help="local: a LocalCluster (its scheduler in this process); processes: `dask scheduler` and `dask worker` processes",
    )
    args = parser.parse_args()

    import distributed

    import cgmem_nb.dask

    with cluster_of(args.layout) as address:
        client = distributed.Client(address)
        try:
            out = measure(client, args)
        finally:
            client.close()
    out["layout"] = args.layout
    print(json.dumps(out, indent=2))
    return 0


@contextlib.contextmanager
def cluster_of(layout: str) -> Iterator[Any]:
    """A scheduler address: a LocalCluster's (its scheduler in this process, as in a notebook that
    makes one), or Dask's own command line's (``dask scheduler`` and two ``dask worker`` processes)."""
    import distributed

    if layout == "local":
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1",
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        )
        try:
            yield cluster
        finally:
            cluster.close()
        return
    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], env=env, stderr=subprocess.DEVNULL)]
    procs += [
        subprocess.Popen(
            [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
            env=env, stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    try:
        with distributed.Client(address, timeout=60) as probe:
            probe.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved plain and profiled runs on ``client``'s cluster."""
    import cgmem_nb.dask

    started = time.perf_counter()
    task(0)
    one = time.perf_counter() - started
    run(client, args.tasks)  # warm-up, plain
    with cgmem_nb.dask.session(client):
        run(client, args.tasks)  # warm-up, profiled (imports cgmem_nb's lazy parts on the workers)
    plain: list[float] = []
    profiled: list[float] = []
    memory: dict[str, dict[str, int]] = {}
    rss_plain: dict[str, int] = {}
    rss_profiled: dict[str, int] = {}
    cpu_plain: list[float] = []
    cpu_profiled: list[float] = []
    for i in range(args.runs):
        c0, t0 = cluster_cpu(client), time.perf_counter()
        run(client, args.tasks)
        plain.append(time.perf_counter() - t0)
        cpu_plain.append(cluster_cpu(client) - c0)
        rss_plain = client.run(rss)
        c0, t0 = cluster_cpu(client), time.perf_counter()
        with cgmem_nb.dask.session(client) as s:
            run(client, args.tasks)
            if i == args.runs - 1:
                memory = client.run(plugin_memory)
        profiled.append(time.perf_counter() - t0)
        cpu_profiled.append(cluster_cpu(client) - c0)
        rss_profiled = client.run(rss)
        assert s.result is not None and s.result.summary.tasks == args.tasks + 1, s.result.summary
        print(
            f"run {i + 1}: plain {plain[-1]:.3f} s ({cpu_plain[-1]:.2f} s CPU), "
            f"profiled {profiled[-1]:.3f} s ({cpu_profiled[-1]:.2f} s CPU)", file=sys.stderr,
        )
    ratio = statistics.median(profiled) / statistics.median(plain)
    out = {
        "tasks": args.tasks,
        "runs": args.runs,
        "task_alone_s": round(one, 4),
        "plain_median_s": round(statistics.median(plain), 3),
        "profiled_median_s": round(statistics.median(profiled), 3),
        "ratio": round(ratio, 3),
        "cpu_plain_median_s": round(statistics.median(cpu_plain), 3),
        "cpu_profiled_median_s": round(statistics.median(cpu_profiled), 3),
        "cpu_ratio": round(statistics.median(cpu_profiled) / statistics.median(cpu_plain), 3),
        "plain_s": [round(v, 3) for v in plain],
        "profiled_s": [round(v, 3) for v in profiled],
        "plugin_memory_mb": {w: {k: round(v / 1e6, 2) if k != "tasks" else v for k, v in m.items()} for w, m in memory.items()},
        "rss_after_profiled_minus_plain_mb": {w: round((rss_profiled[w] - rss_plain[w]) / 1e6, 2) for w in rss_plain if w in rss_profiled},
    }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
