"""The DataFrame schemas: one place that names every table's columns and dtypes.

Every DataFrame cgmem_nb hands out is built by :func:`make_frame` (or
:func:`records_frame` from typed records), so the columns documented here are
the columns users get, in this order, with these dtypes (an empty table keeps
them too). The docs' schema page is generated from :data:`TABLES`.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:
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

#: The ``where`` of rows recorded in the profiling process itself (not on a Dask worker).
KERNEL = "kernel"

#: Every table: name -> columns.
TABLES: dict[str, tuple[Column, ...]] = {
    "lines": _cols(
        ("location", "string", "Where the memory was allocated: `In[7]:3` for line 3 of cell 7, else `file.py:12`."),
        ("cell", "Int64", "Execution count of the notebook cell, or missing for a file."),
        ("lineno", "Int64", "Line number, counted as the cell shows it (line 1 is the `%%memprofile` line)."),
        ("filename", "string", "The file (or the kernel's name for the cell's code)."),
        ("code", "string", "The source line."),
        ("calls", "string", "The library calls the line's biggest stack went through, outermost first (`pandas/core/frame.py:16192 -> pandas/core/reshape/merge.py:405`); missing when the line allocated directly."),
        ("category", "string", "Allocation category (see `AllocationType`)."),
        ("allocated_bytes", _BYTES, "Bytes the line allocated in the session. Exact tracer: the most it held at any checkpoint (a lower bound). Sampled tracer: an estimate of all bytes allocated."),
        ("peak_bytes", _BYTES, "Bytes the line held at the moment of the session's peak."),
        ("retained_bytes", _BYTES, "Bytes the line allocated that were still alive when the session ended."),
        ("count", "Int64", "Blocks still alive at the end (retained), or at the peak when none were retained."),
        ("where", "string", "The process: `kernel`, or a Dask worker's address (`%%memprofile --dask`); a worker's peak is its own."),
        ("native_peak_bytes", _BYTES, "Of `peak_bytes`, what native allocators held (C heap, mmap, library pools); the rest is Python objects and numpy buffers."),
        ("native_retained_bytes", _BYTES, "Of `retained_bytes`, what native allocators still held at the end."),
        ("domain", "string", "Where most of the line's bytes came from: `python`, `numpy`, `c heap`, `mmap` or `library pool` (see the `stacks` table for each)."),
        ("via", "string", "`worker thread` when some of the line's bytes were allocated on threads with no Python frame while the line ran; else missing."),
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
        ("where", "string", "The process: `kernel`, or a Dask worker's address."),
        ("domain", "string", "Where the bytes came from: `python` (objects), `numpy` (data buffers), `c heap` (malloc and its family), `mmap` (anonymous mappings) or `library pool` (an allocator inside a library: jemalloc in Polars, Arrow, DuckDB; Arrow's mimalloc). Missing for the exact tracer."),
        ("via", "string", "How the stack was found when the allocating thread had none: `worker thread` (a thread with no Python frame: charged to the statement the session ran) or `GIL released` (the session's own thread inside a C call); missing for the thread's own stack."),
    ),
    "categories": _cols(
        ("category", "string", "Allocation category."),
        ("allocated_bytes", _BYTES, "As in `lines`, summed over the category."),
        ("peak_bytes", _BYTES, "Held at the session's peak."),
        ("retained_bytes", _BYTES, "Still alive at the end."),
        ("count", "Int64", "Blocks alive at the end (or at the peak)."),
        ("share", "float64", "Share of the session's peak held by this category (0 to 1)."),
        ("native_peak_bytes", _BYTES, "Of `peak_bytes`, what native allocators held."),
        ("native_retained_bytes", _BYTES, "Of `retained_bytes`, what native allocators still held at the end."),
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
    # -- a Dask cluster profiled with the kernel (`%%memprofile --dask`, cgmem_nb.dask) --
    "tasks": _cols(
        ("key", "string", "The task's key, as text (`('read_csv-0a1b', 3)`)."),
        ("prefix", "string", "The key's prefix, the name Dask's dashboard shows (`read_csv`, `groupby-agg`)."),
        ("group", "string", "The key's group (the prefix with its token, one per `.map` or graph layer)."),
        ("worker", "string", "Address of the worker that ran it."),
        ("thread_id", "Int64", "Thread of the worker that ran it (`threading.get_ident()` there)."),
        ("start_s", "float64", "Seconds from the session's start to the task's start (the clocks of kernel and worker)."),
        ("duration_s", "float64", "Seconds the task computed (Dask's own compute span)."),
        ("peak_bytes", _BYTES, "Most traced bytes the task held at once above its start: the worker's traced peak over the task when it ran alone (`exclusive`), else the samples of its thread at checkpoints (a lower bound)."),
        ("retained_bytes", _BYTES, "Traced bytes allocated on its thread while it ran and still alive when it ended (its result included)."),
        ("allocated_bytes", _BYTES, "Traced bytes allocated on its thread while it ran, freed or not (sampled tracer; the exact tracer gives the retained bytes)."),
        ("result_bytes", _BYTES, "Size of its result as Dask measured it (`sizeof`, the managed memory it adds)."),
        ("unmanaged_after_bytes", _BYTES, "The worker's unmanaged memory when it ended: process memory minus Dask's managed bytes."),
        ("exclusive", "boolean", "True when no other task of its worker ran at the same time (its peak is then the worker's traced peak over its span)."),
        ("state", "string", "`memory` (finished), `error`, or `running` (still running when its worker was lost)."),
    ),
    "workers": _cols(
        ("worker", "string", "The worker's address."),
        ("name", "string", "The worker's name in the cluster."),
        ("pid", "Int64", "Process id of the worker."),
        ("status", "string", "`profiled`; `joined` (came mid-session, profiled from then); `died` (lost mid-session); `left`; `not profiled` (see `note`)."),
        ("tracer", "string", "The tracer that ran there: `sampled`, or `exact` where the native sampler is not available."),
        ("rss_before_bytes", _BYTES, "Process memory of the worker when the session started there."),
        ("rss_after_bytes", _BYTES, "Process memory when it stopped (the last sample for a lost worker)."),
        ("rss_peak_bytes", _BYTES, "Highest process memory seen during the session."),
        ("traced_peak_bytes", _BYTES, "Most traced bytes held at once above the session's start there."),
        ("tasks_peak_bytes", _BYTES, "Most bytes the session's tasks held at once: a task's peak plus the managed results present when it started, at its worst task."),
        ("explained", "float64", "Share of the process peak's growth (`rss_peak - rss_before`) that `tasks_peak_bytes` explains (0 to 1)."),
        ("memory_limit_bytes", _BYTES, "Dask's memory limit of the worker (0 when none)."),
        ("tasks", "Int64", "Tasks it ran in the session."),
        ("restarted", "boolean", "True when its nanny restarted it (for memory: see `note`)."),
        ("died", "boolean", "True when it was lost before the session ended."),
        ("last_task", "string", "Task it was running at its last sample (for a lost worker: what it died running)."),
        ("note", "string", "What to know: a tracer fallback, why it died, why it was not profiled."),
    ),
    "cluster_timeline": _cols(
        ("t_s", "float64", "Seconds since the session started."),
        ("worker", "string", "The worker's address."),
        ("rss_bytes", _BYTES, "Process memory of the worker."),
        ("traced_bytes", _BYTES, "Bytes its tracer saw above the session's start there."),
        ("managed_bytes", _BYTES, "Dask's managed memory: the task results it holds."),
        ("executing", "string", "Keys of the tasks running at the sample, comma separated."),
    ),
    # -- notebook awareness and analysis (issue 4) --
    "variables": _cols(
        ("name", "string", "Variable name in the user namespace."),
        ("type", "string", "Type of the object (`pandas.DataFrame`, `numpy.ndarray`, `list`...)."),
        ("category", "string", "Allocation category of the object (from its type)."),
        ("size_bytes", _BYTES, "Deep size: pandas `memory_usage(deep=True)`, numpy `nbytes`, containers walked with each object counted once."),
        ("unique_bytes", _BYTES, "Bytes counted once across the namespace (a view of a named array gets 0; the column sums to the namespace's total)."),
        ("is_view", "boolean", "True for a numpy array that shows another array's buffer."),
        ("shared_with", "string", "Other variables that reach the same object or numpy buffer, comma separated."),
        ("held_by", "string", "Other holders of the same object: `Out[n]`, `_`, `__`, `___`, `f (cache)`."),
        ("length", "Int64", "`len()` of containers and pandas objects, else missing."),
        ("truncated", "boolean", "True when the walk stopped at its object limit (size is a lower bound)."),
    ),
    "history": _cols(
        ("cell", "Int64", "Execution count of the cell."),
        ("code", "string", "First non-blank line of the cell's code."),
        ("started_at", "float64", "Unix time the cell started."),
        ("duration_s", "float64", "Wall time of the cell, in seconds."),
        ("rss_before_bytes", _BYTES, "RSS when the cell started."),
        ("rss_after_bytes", _BYTES, "RSS when the cell ended."),
        ("rss_peak_bytes", _BYTES, "Highest RSS during the cell (the kernel's own peak, VmHWM, reset at the start of each cell)."),
        ("traced_peak_bytes", _BYTES, "Peak of traced heap above the cell's start (tracemalloc). Missing unless `%memwatch on --stacks`."),
        ("retained_bytes", _BYTES, "`rss_after_bytes - rss_before_bytes` (negative when the cell freed memory)."),
        ("traced_retained_bytes", _BYTES, "Traced bytes still alive at the cell's end. Missing unless `--stacks`."),
        ("heavy", "boolean", "True when the cell's peak rose at least the heavy threshold above its start, or it retained that much (see the docs)."),
        ("error", "string", "The exception the cell raised, if any."),
    ),
    "leaks": _cols(
        ("leak_id", "string", "Stable identifier of the holder (`variable:log`, `output:Out[3]`...)."),
        ("holder", "string", "What keeps the memory alive: a variable, `Out[n]`, a cache, `gc.garbage`, `sys.last_traceback`, or `unreachable (native or lost)`."),
        ("holder_kind", "string", "`variable`, `output`, `cache`, `module`, `cycle`, `traceback`, `records` or `native`."),
        ("category", "string", "Allocation category of the leaked memory."),
        ("size", _BYTES, "Bytes held now by the holder (only bytes no variable holds, for outputs and tracebacks)."),
        ("growth", _BYTES, "Bytes the holder grew between first and last observation."),
        ("growth_rate", "float64", "Bytes per second of growth over the observed span."),
        ("age", "float64", "Seconds since the leak was first seen."),
        ("first_seen", "float64", "Unix time of the first observation that showed it."),
        ("last_seen", "float64", "Unix time of the last observation that showed it."),
        ("first_cell", "Int64", "Cell of the first observation."),
        ("last_cell", "Int64", "Cell of the last observation."),
        ("observations", "Int64", "Observations of the holder that the verdict rests on."),
        ("status", "string", "`growing`, `held` (outlived its scope, not growing) or `resolved` (freed since)."),
        ("estimated_impact", "string", "`Low`, `Medium`, `High` or `Critical` (thresholds in the docs)."),
        ("time_to_limit", "float64", "Seconds until the memory limit at the current growth rate (missing when not growing)."),
        ("reason", "string", "Why it is reported."),
        ("fix", "string", "Code that frees it."),
    ),
    "patterns": _cols(
        ("category", "string", "Allocation category."),
        ("average_usage", _BYTES, "Mean bytes held over the observations."),
        ("peak_usage", _BYTES, "Most bytes held at once (including temporaries seen by profiled sessions)."),
        ("current_usage", _BYTES, "Bytes held at the last observation."),
        ("allocation_count", "Int64", "Objects (or blocks) allocated: new holders, manual records, traced blocks."),
        ("deallocation_count", "Int64", "Objects (or blocks) freed."),
        ("allocation_rate", "float64", "Allocations per second over the observed span."),
        ("deallocation_rate", "float64", "Deallocations per second over the observed span."),
        ("freed_within_cell_bytes", _BYTES, "Bytes that lived less than a cell (temporaries: peak minus retained of profiled sessions)."),
        ("freed_within_cells_bytes", _BYTES, "Bytes freed within `lifetime_cells` cells of being created."),
        ("long_lived_freed_bytes", _BYTES, "Bytes freed later than that."),
        ("still_alive_bytes", _BYTES, "Bytes alive at the last observation."),
        ("peak_to_retained", "float64", "Peak over retained bytes in profiled sessions (high: big temporaries)."),
        ("rss_bytes", _BYTES, "Process RSS at the last observation (process-wide, same on every row)."),
        ("heap_bytes", _BYTES, "Bytes malloc has handed out (glibc), process-wide."),
        ("fragmentation_bytes", _BYTES, "Bytes free inside malloc's heap, held by the process (process-wide)."),
        ("observations", "Int64", "Observations the figures rest on."),
    ),
    "recommendations": _cols(
        ("priority", "Int64", "1 is the first thing to do: ranked by savings weighted by ease."),
        ("rule", "string", "Name of the rule that made it."),
        ("target", "string", "What it is about (`df.city`, `Out[3]`, `load`...)."),
        ("description", "string", "What to change and why."),
        ("action", "string", "Code to paste."),
        ("estimated_savings", _BYTES, "Bytes freed by applying it (measured where `measured` is True)."),
        ("savings_error", _BYTES, "Half-width of the savings' 95% error bound when estimated from a sample (0 when exact)."),
        ("measured", "boolean", "True when the savings were measured on the data rather than estimated."),
        ("difficulty", "string", "`Easy`, `Medium` or `Hard`."),
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
        ("native", "boolean", "True when the session sampled native memory (C heap, mmap, library pools); the columns after it are missing otherwise."),
        ("python_peak_bytes", _BYTES, "Of `peak_bytes`, what Python's allocators held (objects and numpy buffers)."),
        ("native_peak_bytes", _BYTES, "Of `peak_bytes`, what native allocators held."),
        ("native_retained_bytes", _BYTES, "Of `retained_bytes`, what native allocators still held at the end."),
        ("worker_bytes", _BYTES, "Bytes allocated on threads with no Python frame and charged to the statement the session ran."),
        ("unknown_bytes", _BYTES, "Bytes no running statement explains (`<unknown>`)."),
        ("rss_explained", "float64", "Share of the RSS growth at its peak that the lines explain (0 to 1); missing when RSS did not grow."),
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


_EMPTY: dict[str, pd.DataFrame] = {}


def make_frame(table: str, rows: Iterable[Mapping[str, Any]] = ()) -> pd.DataFrame:
    """Build ``table`` from row mappings, with the documented columns and dtypes."""
    columns = columns_of(table)
    data = list(rows)
    if not data:
        # Empty tables are common (a result has a dozen); casting costs milliseconds, a copy microseconds.
        empty = _EMPTY.get(table)
        if empty is None:
            empty = _EMPTY[table] = _build(columns, [])
        return empty.copy()
    return _build(columns, data)


def records_frame(table: str, items: Iterable[Any]) -> pd.DataFrame:
    """Build ``table`` from dataclass records whose fields are its columns (enums become their values)."""
    return make_frame(table, (_record_row(item) for item in items))


def _record_row(item: Any) -> dict[str, Any]:
    row = {f.name: getattr(item, f.name) for f in dataclasses.fields(item)}
    return {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in row.items()}


def _build(columns: tuple[Column, ...], data: list[Mapping[str, Any]]) -> pd.DataFrame:
    import pandas as pd  # here, so that the contract's types are cheap to import

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
