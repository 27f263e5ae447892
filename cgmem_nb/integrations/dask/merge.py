"""Merge what the workers saw into the kernel's result: one ``ProfileResult`` for the cluster.

The kernel's own result keeps its figures; it gains:

* ``lines`` and ``stacks`` rows of every worker that answered, with ``where`` its
  address (a worker's peak is its own), and the source line of notebook code read
  from the kernel (the workers name cell files ``In[n]:line`` from the map the
  kernel sent; only the kernel has the cells' text);
* ``tasks``: every task run in the span, from the workers' own records, or for a
  lost worker from what it streamed before it went, and the task it was running;
* ``workers``: per worker, its memory, its tracer, how much of its peak the tasks
  explain, and its fate;
* ``cluster_timeline``: every worker's readings;
* ``leaks``: workers whose unmanaged memory grew across tasks;
* the summary's ``workers``, ``tasks`` and ``cluster_notes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd

from ...analysis.cluster import worker_leaks
from ...schema import leaks_frame, make_frame
from ...session import notebook
from ...session.result import ProfileResult
from ...units import format_bytes
from .stream import ClusterStream, WorkerTrace

__all__ = ["ClusterRecord", "merge"]

_MAX_LINE_ROWS = 1000
_MAX_STACK_ROWS = 500
_ORDER = ["peak_bytes", "retained_bytes", "allocated_bytes"]


@dataclass
class ClusterRecord:
    """Everything the kernel gathered about the cluster for one session."""

    started_wall: float
    stream: ClusterStream
    #: Workers at the start: address -> the status they reported (``worker_status``).
    at_start: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Workers that were not profiled, and why.
    not_profiled: dict[str, str] = field(default_factory=dict)
    #: What each worker handed back at the end (``collect``), or why it did not.
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    #: Messages about the cluster part as a whole.
    notes: list[str] = field(default_factory=list)


def merge(result: ProfileResult, record: ClusterRecord) -> ProfileResult:
    """``result`` (the kernel's) with the cluster's part added."""
    answered = {a: p for a, p in record.payloads.items() if p.get("status") == "ok"}
    tasks = _tasks(record)
    workers, worker_notes = _workers(record, tasks)
    notes = [*record.notes, *worker_notes]
    limits = {str(w["worker"]): int(w["memory_limit_bytes"] or 0) for w in workers}
    leaks = worker_leaks(tasks, limits, origin=record.started_wall)
    tables: dict[str, pd.DataFrame] = {
        "lines": _joined("lines", result.lines, _with_code(_rows(answered, "lines")), _MAX_LINE_ROWS),
        "stacks": _renumbered(_joined("stacks", result.stacks, _rows(answered, "stacks"), _MAX_STACK_ROWS)),
        "tasks": make_frame("tasks", sorted(tasks, key=lambda t: (t["start_s"] if t["start_s"] is not None else 0.0))),
        "workers": make_frame("workers", workers),
        "cluster_timeline": make_frame("cluster_timeline", _timeline(record)),
    }
    if leaks:
        found = leaks_frame(leaks)
        tables["leaks"] = found if result.leaks.empty else pd.concat([result.leaks, found], ignore_index=True)
    merged = result.with_tables(**tables)
    profiled = sum(1 for w in workers if w["status"] in ("profiled", "joined"))
    return merged.with_summary(workers=profiled, tasks=len(tasks), cluster_notes="\n".join(notes) or None)


# -- tables --------------------------------------------------------------------------------
def _rows(answered: Mapping[str, Mapping[str, Any]], table: str) -> list[dict[str, Any]]:
    """The workers' rows of ``table``, each with ``where`` its worker."""
    return [{**row, "where": address} for address, payload in answered.items() for row in payload.get(table) or ()]


def _joined(table: str, kernel: pd.DataFrame, rows: list[dict[str, Any]], cap: int) -> pd.DataFrame:
    frames = [f for f in (kernel, make_frame(table, rows)) if not f.empty]
    if not frames:
        return make_frame(table)
    joined = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    return joined.sort_values(_ORDER, ascending=False, kind="stable").head(cap).reset_index(drop=True)


def _renumbered(stacks: pd.DataFrame) -> pd.DataFrame:
    stacks = stacks.copy()
    stacks["stack_id"] = pd.array(range(len(stacks)), dtype="Int64")
    return stacks


def _with_code(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Worker rows of notebook cells get their source line from the kernel (the worker has no cell text)."""
    for row in rows:
        if row.get("cell") is not None and not row.get("code"):
            row["code"] = notebook.source_line(str(row["filename"]), int(row["lineno"]))
    return rows


def _tasks(record: ClusterRecord) -> list[dict[str, Any]]:
    """Task rows: a worker's own (it answered) or what it streamed (it was lost)."""
    rows: list[dict[str, Any]] = []
    answered = {a for a, p in record.payloads.items() if p.get("status") == "ok"}
    for address, payload in record.payloads.items():
        if address in answered:
            rows += payload.get("tasks") or []
    for address, trace in record.stream.workers.items():
        if address in answered:
            continue
        rows += trace.tasks
        done = {t["key"] for t in trace.tasks}
        last = trace.removed if trace.removed is not None else trace.executing
        end = trace.readings[-1][0] if trace.readings else record.started_wall
        for key in last:
            if key not in done:
                rows.append(_running_row(address, key, end))
    out = []
    for row in rows:
        row = dict(row)
        start = row.pop("start", None)
        row["start_s"] = (float(start) - record.started_wall) if start is not None else None
        out.append(row)
    return out


def _running_row(worker: str, key: str, seen: float) -> dict[str, Any]:
    from .protocol import key_group, key_prefix

    return {"key": key, "prefix": key_prefix(key), "group": key_group(key), "worker": worker, "start": seen, "state": "running"}


def _timeline(record: ClusterRecord) -> list[dict[str, Any]]:
    rows = []
    for address in sorted(set(record.payloads) | set(record.stream.workers)):
        payload = record.payloads.get(address, {})
        readings = payload.get("timeline") if payload.get("status") == "ok" else None
        if readings is None:
            trace = record.stream.workers.get(address)
            readings = trace.readings if trace is not None else []
        for wall, rss, traced, managed, executing in readings:
            rows.append(
                {
                    "t_s": wall - record.started_wall, "worker": address, "rss_bytes": rss,
                    "traced_bytes": traced, "managed_bytes": managed, "executing": executing or None,
                }
            )
    rows.sort(key=lambda r: (r["t_s"], r["worker"]))
    return rows


def _workers(record: ClusterRecord, tasks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[str(task["worker"])] = counts.get(str(task["worker"]), 0) + 1
    addresses = list(dict.fromkeys([*record.at_start, *record.not_profiled, *record.payloads, *record.stream.workers]))
    rows, notes = [], []
    for address in addresses:
        row, note = _worker_row(record, address, counts.get(address, 0))
        rows.append(row)
        if note:
            notes.append(note)
    return rows, notes


def _worker_row(record: ClusterRecord, address: str, tasks: int) -> tuple[dict[str, Any], str | None]:
    start = record.at_start.get(address, {})
    payload = record.payloads.get(address, {})
    trace = record.stream.workers.get(address) or WorkerTrace(address)
    joined = address not in record.at_start
    base: dict[str, Any] = {
        "worker": address,
        "name": payload.get("name", start.get("name")),
        "pid": payload.get("pid", start.get("pid")),
        "memory_limit_bytes": payload.get("limit", start.get("limit", trace.limit)) or 0,
        "tasks": tasks,
        "restarted": trace.killed_rss is not None,
        "died": False,
    }
    if address in record.not_profiled:
        reason = record.not_profiled[address]
        return {**base, "status": "not profiled", "note": reason}, f"worker {address} was not profiled: {reason}"
    if payload.get("status") == "ok":
        return {**base, **_figures(payload, trace), "status": "joined" if joined else "profiled"}, _tracer_note(address, payload)
    return _lost_row(record, address, base, trace, payload)


def _figures(payload: Mapping[str, Any], trace: WorkerTrace) -> dict[str, Any]:
    before, peak = int(payload["rss_before"]), int(payload["rss_peak"])
    growth = peak - before
    tasks_peak = int(payload.get("tasks_peak") or 0)
    return {
        "tracer": payload.get("tracer"),
        "rss_before_bytes": before,
        "rss_after_bytes": payload.get("rss_after"),
        "rss_peak_bytes": peak,
        "traced_peak_bytes": payload.get("traced_peak"),
        "tasks_peak_bytes": tasks_peak,
        "explained": min(tasks_peak / growth, 1.0) if growth > 0 else 1.0,
        "last_task": ",".join(trace.executing) or None,
        "note": payload.get("note"),
    }


def _tracer_note(address: str, payload: Mapping[str, Any]) -> str | None:
    if payload.get("tracer") == "exact" and payload.get("note"):
        return f"worker {address}: {payload['note']}"
    return None


def _lost_row(
    record: ClusterRecord, address: str, base: dict[str, Any], trace: WorkerTrace, payload: Mapping[str, Any]
) -> tuple[dict[str, Any], str]:
    readings = trace.readings
    last_rss = readings[-1][1] if readings else None
    running = trace.removed if trace.removed is not None else trace.executing
    last_task = ",".join(running) or None
    limit = int(base["memory_limit_bytes"] or 0)
    if trace.killed_rss is not None:
        why = f"killed by its nanny for memory ({format_bytes(trace.killed_rss)} of a {format_bytes(limit)} limit)"
    elif trace.removed is not None:
        why = "removed from the cluster" + (" (it was near its memory limit)" if limit and last_rss and last_rss > 0.9 * limit else "")
    elif record.stream.abandoned:
        why = "its session was ended by the scheduler (this kernel's client left the cluster)"
    else:
        why = record.failures.get(address) or payload.get("error") or "it did not answer at the end of the session"
    gone = trace.removed is not None or trace.killed_rss is not None or address in record.failures
    row = {
        **base,
        "status": "died" if gone else "left",
        "died": gone,
        "tracer": record.at_start.get(address, {}).get("tracer"),
        "rss_before_bytes": readings[0][1] if readings else record.at_start.get(address, {}).get("rss"),
        "rss_after_bytes": last_rss,
        "rss_peak_bytes": max((r[1] for r in readings), default=None),
        "traced_peak_bytes": max((r[2] for r in readings), default=None),
        "last_task": last_task,
        "note": why,
    }
    running_text = f" while running {last_task}" if last_task else ""
    seen = f"; its last reading: {format_bytes(last_rss)}" if last_rss is not None else ""
    return row, f"worker {address} was lost{running_text}: {why}{seen}"
