"""From a recording's snapshots to the rows of its result: one per stack, then per line, category and thread.

:func:`stack_rows` pairs each stack's figures at the peak with its figures at the
end (and, for the exact tracer, the most it held at a checkpoint) and names the
line it is charged to (:func:`cgmem_nb.session.notebook.attribute`); :func:`totals`
sums those rows by line, category and thread. Both are plain functions of what
the recording kept: the work is proportional to the stacks sampled, not to the
process.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..categories import CATEGORY_RULES
from ..engine.protocol import NATIVE_DOMAINS
from ..engine.tracers import Frame, TraceSnapshot
from ..schema import KERNEL
from . import notebook
from .snapshots import StackKey, by_key

#: Where memory no running statement explains is charged (``notebook.attribute``).
UNKNOWN = "<unknown>"


def stack_rows(
    peak: TraceSnapshot | None,
    final: TraceSnapshot | None,
    held_max: dict[StackKey, tuple[int, int]],
    estimate: bool,
) -> tuple[list[dict[str, Any]], int]:
    """One row per stack that allocated or held anything, biggest peak first (``stack_id`` in
    that order), and the bytes held by stacks that are the profiler's own (no user line)."""
    peak_stats = by_key(peak.stats) if peak else {}
    final_stats = by_key(final.stats) if final else {}
    keys = set(peak_stats) | set(final_stats) | set(held_max)
    rows: list[dict[str, Any]] = []
    own_bytes = 0
    frame_names: dict[Frame, str] = {}  # one result's frames repeat across its stacks

    def location(frame: Frame) -> str:
        name = frame_names.get(frame)
        if name is None:
            name = frame_names[frame] = notebook.location(*frame)
        return name

    for key in keys:
        frames, thread_id, tag, domain, via = key
        p, f = peak_stats.get(key), final_stats.get(key)
        peak_b = p.live_bytes if p else 0
        ret_b = f.live_bytes if f else 0
        if estimate:
            alloc_b = max((f.allocated_bytes if f else 0), (p.allocated_bytes if p else 0), peak_b, ret_b)
        else:
            alloc_b = max(held_max.get(key, (0, 0))[0], peak_b, ret_b)
        count = f.live_count if f and ret_b else (p.live_count if p else 0)
        if alloc_b <= 0 and peak_b <= 0 and ret_b <= 0:
            continue
        where = notebook.attribute(frames)
        if where is None:
            own_bytes += max(peak_b, ret_b)
            continue
        filename, lineno = where
        loc = location(where)
        category = CATEGORY_RULES.classify(frames, tag, labels=(loc,)).value
        rows.append(
            {
                "location": loc,
                "_filename": filename,
                "_lineno": lineno,
                "_calls": notebook.via(frames, where),
                "stack": " <- ".join(map(location, notebook.trim_stack(frames))),
                "depth": len(frames),
                "category": category,
                "thread_id": thread_id,
                "allocated_bytes": alloc_b,
                "peak_bytes": peak_b,
                "retained_bytes": ret_b,
                "count": count,
                "where": KERNEL,
                "domain": domain,
                "via": via,
            }
        )
    rows.sort(key=lambda r: (r["peak_bytes"], r["retained_bytes"], r["allocated_bytes"]), reverse=True)
    for i, row in enumerate(rows):
        row["stack_id"] = i
    return rows, own_bytes


@dataclass
class Totals:
    """The stack rows summed by line, category and thread."""

    #: One row per line, the user's own lines first (cells and the user's files), then by peak.
    lines: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    threads: list[dict[str, Any]]
    #: Bytes held by allocations made on worker threads for a statement (``via`` "worker thread").
    worker_bytes: int
    #: Bytes charged to :data:`UNKNOWN`.
    unknown_bytes: int


def totals(rows: list[dict[str, Any]], peak_bytes: int) -> Totals:
    """Sum :func:`stack_rows` by line, category and thread (``peak_bytes`` gives each category's share)."""
    by_line: dict[tuple[str, int], dict[str, Any]] = {}
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0])
    worker_bytes = unknown_bytes = 0
    by_thread: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for row in rows:
        line = by_line.get((row["_filename"], row["_lineno"]))
        if line is None:
            line = by_line[(row["_filename"], row["_lineno"])] = {
                "location": row["location"],
                "cell": notebook.cell_number(row["_filename"]),
                "lineno": row["_lineno"],
                "filename": row["_filename"],
                "code": notebook.source_line(row["_filename"], row["_lineno"]),
                "calls": row["_calls"] or None,
                "category": row["category"],
                "allocated_bytes": 0,
                "peak_bytes": 0,
                "retained_bytes": 0,
                "count": 0,
                "where": KERNEL,
                "native_peak_bytes": 0,
                "native_retained_bytes": 0,
                "_domains": defaultdict(int),
                "via": None,
            }
        for col in ("allocated_bytes", "peak_bytes", "retained_bytes", "count"):
            line[col] += row[col]
        native = row["domain"] in NATIVE_DOMAINS
        held = max(row["peak_bytes"], row["retained_bytes"])
        if row["domain"] is not None:
            line["_domains"][row["domain"]] += held
        if row["via"] == "worker thread":
            line["via"] = "worker thread"
            worker_bytes += held
        if row["location"] == UNKNOWN:
            unknown_bytes += held
        cat = by_cat[row["category"]]
        for i, col in enumerate(("allocated_bytes", "peak_bytes", "retained_bytes", "count")):
            cat[i] += row[col]
        if native:
            line["native_peak_bytes"] += row["peak_bytes"]
            line["native_retained_bytes"] += row["retained_bytes"]
            cat[4] += row["peak_bytes"]
            cat[5] += row["retained_bytes"]
        if row["thread_id"] is not None:
            th = by_thread[row["thread_id"]]
            for i, col in enumerate(("allocated_bytes", "peak_bytes", "retained_bytes")):
                th[i] += row[col]

    lines = sorted(
        by_line.values(),
        key=lambda r: (notebook.is_user_code(r["filename"]), r["peak_bytes"], r["retained_bytes"], r["allocated_bytes"]),
        reverse=True,
    )
    for line in lines:
        domains = line.pop("_domains")
        line["domain"] = max(domains, key=domains.__getitem__) if domains else None
    cats = [
        {
            "category": name,
            "allocated_bytes": v[0],
            "peak_bytes": v[1],
            "retained_bytes": v[2],
            "count": v[3],
            "share": (v[1] / peak_bytes) if peak_bytes else 0.0,
            "native_peak_bytes": v[4],
            "native_retained_bytes": v[5],
        }
        for name, v in sorted(by_cat.items(), key=lambda kv: kv[1][1], reverse=True)
    ]
    names = {t.ident: t.name for t in threading.enumerate()}
    threads = [
        {"thread_id": tid, "thread_name": names.get(tid), "allocated_bytes": v[0], "peak_bytes": v[1], "retained_bytes": v[2]}
        for tid, v in sorted(by_thread.items(), key=lambda kv: kv[1][1], reverse=True)
    ]
    for row in rows:
        row.pop("_filename")
        row.pop("_lineno")
    return Totals(lines, cats, threads, worker_bytes, unknown_bytes)
