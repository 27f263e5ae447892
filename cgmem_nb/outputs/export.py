"""Exports of the whole profiler: its state as tables, JSON, CSV and Prometheus text.

* :func:`profiler_tables`, :func:`profiler_json`, :func:`profiler_csv`, :func:`prometheus`
  (``MEMORY_PROFILER.export_json()``, ``.export_csv(dir)``, ``.export_prometheus()``
  reach these through the facade; the dashboard's ``/api`` serves them);
* :func:`metrics_dict` and :func:`category_rows`: the current figures, shared with the live feed;
* the file formats (JSON and CSV of tables, atomic writes) are
  :mod:`cgmem_nb.session.serialize`'s; its readers are re-exported here for
  ``cgmem_nb.export.read_csv_tables(directory)`` and friends.

A result's own exports are ``ProfileResult.to_json(path)`` / ``ProfileResult.to_csv(directory)``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

from .. import schema
from ..engine.monitor import MONITOR
from ..errors import ExportError, ResultFormatError
from ..schema import PressureLevel, Summary, leaks_frame, recommendations_frame
from ..session import pools
from ..session.serialize import (
    NA_REP,
    check_table_name,
    dumps,
    loads,
    frame_to_csv_text,
    read_csv_kwargs,
    read_csv_tables,
    table_from_dict,
    table_to_dict,
    write_atomically,
    write_tables_csv,
)

if TYPE_CHECKING:
    from ..session.profiler import MemoryMetrics, MemoryProfiler

__all__ = [
    "ExportError",
    "NA_REP",
    "category_rows",
    "findings_tables",
    "frame_to_csv_text",
    "metrics_dict",
    "native_figures",
    "profiler_csv",
    "profiler_dict",
    "profiler_json",
    "profiler_tables",
    "prometheus",
    "read_csv_kwargs",
    "read_csv_tables",
    "tables_from_json",
    "write_tables_csv",
]

_PROFILER_FORMAT = "cgmem_nb.ProfilerState"
_VERSION = 1


# -- the profiler's state ----------------------------------------------------------------------
def native_figures(s: Summary) -> dict[str, Any]:
    """A session's Python / native split (the summary's figures; None for each figure when the
    native hooks did not run, so a missing figure is never read as 0)."""
    ran = s.native
    return {
        "native": ran,
        "python_peak_bytes": s.python_peak_bytes if ran else None,
        "native_peak_bytes": s.native_peak_bytes if ran else None,
        "native_retained_bytes": s.native_retained_bytes if ran else None,
        "worker_bytes": s.worker_bytes if ran else None,
        "unknown_bytes": s.unknown_bytes if ran else None,
        "rss_explained": s.rss_explained if ran else None,
    }


def metrics_dict(profiler: MemoryProfiler, metrics: MemoryMetrics | None = None) -> dict[str, Any]:
    """The profiler's current figures as a JSON-safe dict (``/api/metrics.json``)."""
    m = metrics if metrics is not None else profiler.get_metrics()
    last = profiler.last_result
    return {
        "time": time.time(),
        "current_bytes": m.current_usage,
        "peak_bytes": m.peak_usage,
        "limit_bytes": m.limit,
        "limit_source": m.limit_source,
        "usage_ratio": m.usage_ratio,
        "pressure_level": MONITOR.pressure_level(m.current_usage, m.limit).value,
        "traced_bytes": m.traced_bytes,
        "uss_bytes": m.uss_bytes,
        "tracked_bytes": m.tracked_bytes,
        "tracked_peak_bytes": m.tracked_peak_bytes,
        "allocation_count": m.allocation_count,
        "deallocation_count": m.deallocation_count,
        "active_sessions": m.active_sessions,
        "sessions_finished": profiler.sessions_finished,
        "by_category": dict(m.by_category),
        # The latest finished session's label and Python / native split (None before any).
        "last_session": None if last is None else {"label": last.summary.label, **native_figures(last.summary)},
    }


def category_rows(profiler: MemoryProfiler, metrics: MemoryMetrics | None = None) -> list[dict[str, Any]]:
    """Bytes by category: the latest result's peak, and manual records alive now."""
    m = metrics if metrics is not None else profiler.get_metrics()
    rows: list[dict[str, Any]] = []
    last = profiler.last_result
    if last is not None:
        cats = last.categories
        for name, peak in zip(cats["category"], cats["peak_bytes"]):
            rows.append({"category": str(name), "source": "last_session", "bytes": int(peak) if peak is not pd.NA else 0})
    for name, size in sorted(m.by_category.items()):
        rows.append({"category": name, "source": "tracked", "bytes": int(size)})
    return rows


def findings_tables(profiler: MemoryProfiler) -> dict[str, pd.DataFrame]:
    """``profiler.detect_leaks()`` and ``profiler.generate_recommendations()`` as the
    ``leaks`` and ``recommendations`` tables, read without changing anything (``observe=False``:
    an export takes no observation and leaves the leak history as it was)."""
    return {
        "leaks": leaks_frame(profiler.detect_leaks(observe=False)),
        "recommendations": recommendations_frame(profiler.generate_recommendations(observe=False)),
    }


def profiler_tables(profiler: MemoryProfiler, *, analysis: bool = True) -> dict[str, pd.DataFrame]:
    """The profiler's state as DataFrames (see :data:`cgmem_nb.schema.PROFILER_TABLES`).

    ``leaks`` and ``recommendations`` (from the analysis) are added when ``analysis`` is true.
    """
    metrics = profiler.get_metrics()
    sessions = []
    for i, r in enumerate(profiler.results):
        s = r.summary
        sessions.append(
            {
                "index": i,
                "label": s.label,
                "cell": s.cell,
                "tracer": s.tracer,
                "started_at": s.started_at,
                "duration_s": s.duration_s,
                "peak_bytes": s.peak_bytes,
                "retained_bytes": s.retained_bytes,
                "allocated_bytes": s.allocated_bytes,
                "rss_peak_bytes": s.rss_peak_bytes,
                "limit_bytes": s.limit_bytes,
                "interrupted": s.interrupted,
                "guard_triggered": s.guard_triggered,
                "error": s.error,
                **native_figures(s),
            }
        )
    m = metrics_dict(profiler, metrics)
    m.pop("by_category")
    m.pop("last_session")
    tables = {
        "metrics": schema.make_frame("metrics", [m]),
        "sessions": schema.make_frame("sessions", sessions),
        "allocations": schema.make_frame(
            "allocations",
            [{"allocation_id": a, "size_bytes": b, "category": c, "created": t} for a, b, c, t in profiler.tracked_allocations()],
        ),
        "monitor": schema.make_frame(
            "monitor", [{"time": t.wall, "rss_bytes": t.rss_bytes, "traced_bytes": t.traced_bytes} for t in list(MONITOR.timeline)]
        ),
        "category_bytes": schema.make_frame("category_bytes", category_rows(profiler, metrics)),
    }
    if analysis:
        tables.update(findings_tables(profiler))
    return tables


def profiler_dict(profiler: MemoryProfiler) -> dict[str, Any]:
    """The profiler's state as a JSON-safe dict: its tables and every stored result."""
    tables = profiler_tables(profiler)
    return {
        "format": _PROFILER_FORMAT,
        "version": _VERSION,
        "tables": {name: table_to_dict(frame) for name, frame in tables.items()},
        "results": [r.to_dict() for r in profiler.results],
    }


def profiler_json(profiler: MemoryProfiler, path: str | os.PathLike[str] | None = None, *, indent: int | None = None) -> str:
    """The profiler's state as JSON text; also written atomically to ``path`` when given."""
    text = dumps(profiler_dict(profiler), indent=indent)
    if path is not None:
        write_atomically(path, text)
    return text


def tables_from_json(text: str) -> dict[str, pd.DataFrame]:
    """The tables of a :func:`profiler_json` document, with their dtypes."""
    data = loads(text, what="the profiler export")
    if not isinstance(data, dict) or data.get("format") != _PROFILER_FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ResultFormatError(f"not a cgmem_nb profiler export (format={found!r})")
    specs = data.get("tables")
    if not isinstance(specs, dict):
        raise ResultFormatError("the profiler export's 'tables' must map table names to tables")
    return {
        check_table_name(name): table_from_dict(spec, where=f"the profiler export, table {name!r}")
        for name, spec in specs.items()
    }


def profiler_csv(profiler: MemoryProfiler, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the profiler's tables as CSV files (one per table) into ``directory``."""
    return write_tables_csv(directory, profiler_tables(profiler))


# -- Prometheus ---------------------------------------------------------------------------------
def prometheus(profiler: MemoryProfiler | None = None, *, leaks_detected: int | None = None) -> str:
    """The profiler's figures in the Prometheus text exposition format.

    A private ``CollectorRegistry`` per call, so nothing global is registered.
    Gauges: ``cgmem_memory_current_bytes``, ``cgmem_memory_peak_bytes``,
    ``cgmem_memory_limit_bytes``, ``cgmem_traced_bytes``, ``cgmem_category_bytes{category,source}``,
    ``cgmem_pressure_level`` (0 Low to 3 Critical), ``cgmem_active_sessions``.
    Counters: ``cgmem_allocations_total``, ``cgmem_deallocations_total``,
    ``cgmem_leaks_detected_total``, ``cgmem_sessions_total``.
    When the latest finished session sampled native memory: ``cgmem_session_peak_bytes{domain}``
    and ``cgmem_session_retained_bytes{domain}`` (``domain`` ``python`` or ``native``; they sum to
    its traced peak and retained bytes), ``cgmem_session_worker_bytes``,
    ``cgmem_session_unknown_bytes``, ``cgmem_session_rss_explained_ratio``. When pyarrow is
    imported: ``cgmem_arrow_pool_bytes{backend,state}`` (``state`` ``in_use``: Arrow's
    ``bytes_allocated()``; ``unused``: resident pages the pool keeps beyond that).
    ``leaks_detected`` overrides the leak count (the dashboard passes the leaks its
    feed saw); by default it is the number of findings of ``detect_leaks()``.
    """
    try:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ExportError(f"Prometheus export needs prometheus_client: pip install 'cgmem_nb[jupyter]' ({exc})") from None
    if profiler is None:
        from ..session.profiler import MEMORY_PROFILER

        profiler = MEMORY_PROFILER
    metrics = profiler.get_metrics()
    m = metrics_dict(profiler, metrics)
    cats = category_rows(profiler, metrics)
    if leaks_detected is None:
        leaks_detected = len(profiler.detect_leaks(observe=False))
    last = profiler.last_result
    pool = pools.arrow_pool()

    def families() -> Iterable[Any]:
        for name, doc, value in (
            ("cgmem_memory_current_bytes", "Resident set size of the kernel process.", m["current_bytes"]),
            ("cgmem_memory_peak_bytes", "Peak RSS of the kernel process.", m["peak_bytes"]),
            ("cgmem_memory_limit_bytes", "Memory limit in force.", m["limit_bytes"]),
            ("cgmem_traced_bytes", "Bytes the running tracer sees (0 when no session runs).", m["traced_bytes"] or 0),
            ("cgmem_tracked_bytes", "Manual records: bytes alive now.", m["tracked_bytes"]),
            ("cgmem_pressure_level", "Memory pressure: 0 Low, 1 Medium, 2 High, 3 Critical.", PressureLevel(m["pressure_level"]).rank),
            ("cgmem_active_sessions", "Profiling sessions running now.", m["active_sessions"]),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))
        cat = GaugeMetricFamily("cgmem_category_bytes", "Bytes by allocation category.", labels=["category", "source"])
        for row in cats:
            cat.add_metric([row["category"], row["source"]], float(row["bytes"]))
        yield cat
        if last is not None and last.summary.native:
            yield from _native_families(last.summary, GaugeMetricFamily)
        if pool is not None:
            arrow = GaugeMetricFamily(
                "cgmem_arrow_pool_bytes", "Arrow's default memory pool: bytes its data uses (in_use) and resident "
                "bytes it keeps beyond them (unused; release_unused() returns them).", labels=["backend", "state"],
            )
            arrow.add_metric([pool.backend, "in_use"], float(pool.allocated_bytes))
            arrow.add_metric([pool.backend, "unused"], float(pool.unused_bytes))
            yield arrow
        for name, doc, value in (
            ("cgmem_allocations", "Manual allocation records.", m["allocation_count"]),
            ("cgmem_deallocations", "Manual deallocation records.", m["deallocation_count"]),
            ("cgmem_leaks_detected", "Leaks detected.", leaks_detected),
            ("cgmem_sessions", "Profiling sessions finished.", m["sessions_finished"]),
        ):
            yield CounterMetricFamily(name, doc, value=float(value))

    class _Collector:
        def collect(self) -> Iterable[Any]:
            return families()

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector())
    return generate_latest(registry).decode("utf-8")


def _native_families(s: Summary, gauge: Any) -> Iterable[Any]:
    """The latest session's Python / native split as gauges (a session that sampled native memory)."""
    for name, doc, python, native in (
        ("cgmem_session_peak_bytes", "The latest finished session's traced peak, by allocator domain "
         "(python: Python objects and numpy buffers; native: C heap, mmap, library pools).",
         s.python_peak_bytes, s.native_peak_bytes),
        ("cgmem_session_retained_bytes", "Traced bytes the latest finished session kept, by allocator domain.",
         s.retained_bytes - s.native_retained_bytes, s.native_retained_bytes),
    ):
        family = gauge(name, doc, labels=["domain"])
        family.add_metric(["python"], float(python))
        family.add_metric(["native"], float(native))
        yield family
    yield gauge("cgmem_session_worker_bytes", "Bytes of the latest session allocated on threads with no Python frame "
                "and charged to the statement it ran.", value=float(s.worker_bytes))
    yield gauge("cgmem_session_unknown_bytes", "Bytes of the latest session no running statement explains.",
                value=float(s.unknown_bytes))
    if s.rss_explained is not None:
        yield gauge("cgmem_session_rss_explained_ratio", "Share of the latest session's RSS growth its lines explain "
                    "(0 to 1).", value=float(s.rss_explained))
