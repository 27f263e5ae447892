"""The DataFrame schemas: one place that names every table's columns and dtypes.

Every DataFrame cgmem_nb hands out is built by :func:`make_frame`, so the
columns documented here are the columns users get, in this order, with these
dtypes (an empty table keeps them too). The docs' schema page is generated
from :data:`TABLES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import pandas as pd


@dataclass(frozen=True)
class Column:
    """One column: its name, pandas dtype and meaning."""

    name: str
    dtype: str
    doc: str


def _cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


_BYTES = "Int64"

#: Every table: name -> columns.
TABLES: dict[str, tuple[Column, ...]] = {
    "lines": _cols(
        ("location", "string", "Where the memory was allocated: `In[7]:3` for line 3 of cell 7, else `file.py:12`."),
        ("cell", "Int64", "Execution count of the notebook cell, or missing for a file."),
        ("lineno", "Int64", "Line number, counted as the cell shows it (line 1 is the `%%memprofile` line)."),
        ("filename", "string", "The file (or the kernel's name for the cell's code)."),
        ("code", "string", "The source line."),
        ("category", "string", "Allocation category (see `AllocationType`)."),
        ("allocated_bytes", _BYTES, "Bytes the line allocated in the session. Exact tracer: the most it held at any checkpoint (a lower bound). Sampled tracer: an estimate of all bytes allocated."),
        ("peak_bytes", _BYTES, "Bytes the line held at the moment of the session's peak."),
        ("retained_bytes", _BYTES, "Bytes the line allocated that were still alive when the session ended."),
        ("count", "Int64", "Blocks still alive at the end (retained), or at the peak when none were retained."),
    ),
    "stacks": _cols(
        ("stack_id", "Int64", "Identifier of the stack within this result."),
        ("location", "string", "The line the stack is attributed to (as in `lines`)."),
        ("stack", "string", "The frames, innermost first, joined by ` <- `."),
        ("depth", "Int64", "Number of frames recorded."),
        ("category", "string", "Allocation category."),
        ("thread_id", "Int64", "Allocating thread, where the tracer records threads."),
        ("allocated_bytes", _BYTES, "As in `lines`, for this stack."),
        ("peak_bytes", _BYTES, "Bytes held at the session's peak."),
        ("retained_bytes", _BYTES, "Bytes still alive at the end."),
        ("count", "Int64", "Blocks alive at the end (or at the peak)."),
    ),
    "categories": _cols(
        ("category", "string", "Allocation category."),
        ("allocated_bytes", _BYTES, "As in `lines`, summed over the category."),
        ("peak_bytes", _BYTES, "Held at the session's peak."),
        ("retained_bytes", _BYTES, "Still alive at the end."),
        ("count", "Int64", "Blocks alive at the end (or at the peak)."),
        ("share", "float64", "Share of the session's peak held by this category (0 to 1)."),
    ),
    "threads": _cols(
        ("thread_id", "Int64", "`threading.get_ident()` of the thread."),
        ("thread_name", "string", "The thread's name, if it is still alive."),
        ("allocated_bytes", _BYTES, "As in `lines`, summed over the thread."),
        ("peak_bytes", _BYTES, "Held at the session's peak."),
        ("retained_bytes", _BYTES, "Still alive at the end."),
    ),
    "timeline": _cols(
        ("t_s", "float64", "Seconds since the session started."),
        ("rss_bytes", _BYTES, "Resident set size of the process."),
        ("traced_bytes", _BYTES, "Bytes the tracer saw, counted from the session's start."),
        ("gap", "boolean", "True where the reading came late (the GIL was held by a C call)."),
    ),
}


#: Tables of the whole profiler's state (``MEMORY_PROFILER.export_*``, the dashboard's
#: ``/api/export``); kept apart from :data:`TABLES`, which every ``ProfileResult`` holds.
PROFILER_TABLES: dict[str, tuple[Column, ...]] = {
    "metrics": _cols(
        ("time", "float64", "Unix time of the reading."),
        ("current_bytes", _BYTES, "Resident set size of the process."),
        ("peak_bytes", _BYTES, "The kernel's peak RSS of the process."),
        ("limit_bytes", _BYTES, "The memory limit in force."),
        ("limit_source", "string", "Where the limit came from (`config`, `cgroup v2`, `physical`, ...)."),
        ("usage_ratio", "float64", "`current_bytes / limit_bytes`."),
        ("pressure_level", "string", "`Low`, `Medium`, `High` or `Critical` (70/85/95% of the limit by default)."),
        ("traced_bytes", _BYTES, "Bytes the running tracer sees; missing when no session runs."),
        ("uss_bytes", _BYTES, "Unique set size, where the platform reports it."),
        ("tracked_bytes", _BYTES, "Manual records: bytes alive now."),
        ("tracked_peak_bytes", _BYTES, "Manual records: the most alive at once."),
        ("allocation_count", "Int64", "Manual records: allocations recorded."),
        ("deallocation_count", "Int64", "Manual records: deallocations recorded."),
        ("active_sessions", "Int64", "Sessions running now."),
        ("sessions_finished", "Int64", "Sessions finished since the process started."),
    ),
    "sessions": _cols(
        ("index", "Int64", "Position in `MEMORY_PROFILER.results` (0 is the oldest kept)."),
        ("label", "string", "The session's label (`In[7]`, a function name, ...)."),
        ("cell", "Int64", "Execution count of the profiled cell, if any."),
        ("tracer", "string", "`exact`, `sampled` or `disabled`."),
        ("started_at", "string", "ISO 8601 start time (UTC)."),
        ("duration_s", "float64", "Seconds the session ran."),
        ("peak_bytes", _BYTES, "Traced peak above the session's start."),
        ("retained_bytes", _BYTES, "Traced bytes still alive at the end."),
        ("allocated_bytes", _BYTES, "Bytes allocated (see the `lines` table)."),
        ("rss_peak_bytes", _BYTES, "Peak RSS of the process during the session."),
        ("limit_bytes", _BYTES, "The limit the session was measured against."),
        ("interrupted", "boolean", "True when the cell ended with KeyboardInterrupt (the guard, or the user)."),
        ("guard_triggered", "boolean", "True when the memory guard interrupted the session."),
        ("error", "string", "The exception the session ended with, if any."),
    ),
    "allocations": _cols(
        ("allocation_id", "Int64", "Id returned by `record_allocation()`."),
        ("size_bytes", _BYTES, "Bytes recorded."),
        ("category", "string", "Allocation category."),
        ("created", "float64", "Unix time of the record."),
    ),
    "monitor": _cols(
        ("time", "float64", "Unix time of the monitor tick."),
        ("rss_bytes", _BYTES, "Resident set size at the tick."),
        ("traced_bytes", _BYTES, "Bytes the running tracer saw, if one ran."),
    ),
    "category_bytes": _cols(
        ("category", "string", "Allocation category."),
        ("source", "string", "`last_session` (peak bytes in the latest result) or `tracked` (manual records alive now)."),
        ("bytes", _BYTES, "Bytes in the category from that source."),
    ),
}


def columns_of(table: str) -> tuple[Column, ...]:
    """The columns of ``table`` (a result table or a profiler table)."""
    if table in TABLES:
        return TABLES[table]
    if table in PROFILER_TABLES:
        return PROFILER_TABLES[table]
    raise KeyError(f"no table {table!r}; tables: {sorted(TABLES) + sorted(PROFILER_TABLES)}")


def make_frame(table: str, rows: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Build ``table`` from row mappings, with the documented columns and dtypes."""
    columns = columns_of(table)
    data = list(rows)
    frame = pd.DataFrame({c.name: [row.get(c.name) for row in data] for c in columns})
    return frame.astype({c.name: c.dtype for c in columns}) if len(columns) else frame


def schema_markdown() -> str:
    """The schemas as a Markdown document (used to generate the docs page)."""
    out = ["# DataFrame schemas", ""]
    for table, columns in {**TABLES, **PROFILER_TABLES}.items():
        out += [f"## `{table}`", "", "| column | dtype | meaning |", "| --- | --- | --- |"]
        out += [f"| `{c.name}` | `{c.dtype}` | {c.doc} |" for c in columns]
        out.append("")
    return "\n".join(out)
