"""Leaks of Dask workers: unmanaged memory that grows across tasks, named by task prefix.

A pure function of the task rows a profiled cluster reported (the ``tasks``
table's columns ``worker``, ``prefix``, ``start_s`` or ``start``, ``duration_s``
and ``unmanaged_after_bytes``). A worker's *unmanaged* memory is its process
memory minus Dask's managed bytes (the results it holds). When it keeps growing
from task to task, something the tasks leave behind (a module-level list, a
cache, a global) holds memory that no result accounts for. The leak is named by
the task prefix after which it grew most.

Rule (per worker, tasks in order of their end):

* at least :attr:`WorkerLeakSettings.min_tasks` tasks;
* growth: the median of the last three readings minus the lowest of the first
  three, at least ``max(min_growth, min_growth_share x limit)``;
* steady: of the steps that moved more than ``noise``, at least ``steady_share``
  went up.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..schema import LeakImpact, MemoryLeak
from ..units import format_bytes
from .leaks import LEAK_DETECTOR

__all__ = ["WorkerLeakSettings", "worker_leaks"]

MB = 1 << 20


@dataclass(frozen=True)
class WorkerLeakSettings:
    """Thresholds of the worker leak rule (see the module docs)."""

    min_tasks: int = 5
    min_growth: int = 20 * MB
    min_growth_share: float = 0.02
    noise: int = 1 * MB
    steady_share: float = 0.6


def _end(row: Mapping[str, Any]) -> float:
    start = row.get("start_s", row.get("start"))
    return float(start or 0.0) + float(row.get("duration_s") or 0.0)


def worker_leaks(
    tasks: Iterable[Mapping[str, Any]],
    limits: Mapping[str, int],
    *,
    origin: float = 0.0,
    settings: WorkerLeakSettings = WorkerLeakSettings(),
) -> list[MemoryLeak]:
    """Leaks of the workers in ``tasks`` (rows), biggest growth first.

    ``limits`` gives each worker's memory limit (for the threshold and the impact);
    ``origin`` is the Unix time row times count from (0 when they are Unix times).
    """
    by_worker: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in tasks:
        if row.get("unmanaged_after_bytes") is not None and row.get("worker"):
            by_worker[str(row["worker"])].append(row)
    leaks = []
    for worker, rows in by_worker.items():
        leak = _worker_leak(worker, sorted(rows, key=_end), int(limits.get(worker) or 0), origin, settings)
        if leak is not None:
            leaks.append(leak)
    return sorted(leaks, key=lambda leak: leak.growth, reverse=True)


def _worker_leak(
    worker: str, rows: list[Mapping[str, Any]], limit: int, origin: float, s: WorkerLeakSettings
) -> MemoryLeak | None:
    if len(rows) < s.min_tasks:
        return None
    values = [int(r["unmanaged_after_bytes"]) for r in rows]
    growth = int(statistics.median(values[-3:])) - min(values[:3])
    if growth < max(s.min_growth, int(s.min_growth_share * limit)):
        return None
    steps = [b - a for a, b in zip(values, values[1:])]
    moved = [d for d in steps if abs(d) > s.noise]
    if not moved or sum(d > 0 for d in moved) / len(moved) < s.steady_share:
        return None
    after: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for row, step in zip(rows[1:], steps):
        counts[str(row["prefix"])] += 1
        if step > 0:
            after[str(row["prefix"])] += step
    prefix = max(after, key=lambda p: after[p])
    share = after[prefix] / max(sum(after.values()), 1)
    first, last = origin + _end(rows[0]), origin + _end(rows[-1])
    span = max(last - first, 1e-3)
    rate = growth / span
    impact, ttl = LEAK_DETECTOR.impact(growth, rate, limit, values[-1]) if limit else (LeakImpact.LOW, None)
    return MemoryLeak(
        leak_id=f"worker:{worker}:{prefix}",
        holder=f"{prefix} tasks on worker {worker}",
        holder_kind="worker",
        category="Unknown",
        size=values[-1],
        growth=growth,
        growth_rate=rate,
        age=span,
        first_seen=first,
        last_seen=last,
        first_cell=None,
        last_cell=None,
        observations=len(rows),
        status="growing",
        estimated_impact=impact,
        time_to_limit=ttl,
        reason=(
            f"the worker's unmanaged memory (process memory minus Dask's managed results) grew by "
            f"{format_bytes(growth)} over {len(rows)} tasks; {share:.0%} of the growth came after "
            f"{counts[prefix]} `{prefix}` tasks"
        ),
        fix=(
            f"# a `{prefix}` task leaves memory behind that no result holds (a module-level list or dict,\n"
            f"# a cache, a global): keep it in the task's result instead, or clear it; to free it now:\n"
            f"client.restart()  # or client.restart_workers([{worker!r}])"
        ),
    )
