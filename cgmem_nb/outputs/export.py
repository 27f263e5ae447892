"""Exports: JSON, CSV (one file per table) and Prometheus text, for a result or the whole profiler.

* ``ProfileResult.to_json(path)`` / ``ProfileResult.to_csv(directory)`` for one session;
* :func:`profiler_json`, :func:`profiler_csv`, :func:`prometheus` for the whole
  profiler (``MEMORY_PROFILER.export_json()``, ``.export_csv(dir)``,
  ``.export_prometheus()`` delegate here);
* :func:`read_csv_tables` reads a CSV export back with the documented dtypes.

Every file is written atomically (a temporary file in the same directory, then a
rename), so a crash never leaves half a file behind.

CSV conventions: a missing value is written as ``<NA>`` (so an empty string stays
an empty string); floats are written in their shortest round-trip form. A
``manifest.json`` next to the tables records each table's file and dtypes (and,
for a result, its summary). Without :func:`read_csv_tables`, pandas reads a table
exactly with::

    dtypes = json.load(open(d / "manifest.json"))["tables"]["lines"]["dtypes"]
    pd.read_csv(d / "lines.csv", dtype=dtypes, keep_default_na=False, na_values=["<NA>"])

(with pandas < 3 add ``float_precision="round_trip"``; :func:`read_csv_kwargs` does this).
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import pandas as pd

from .. import schema
from ..errors import CgmemError, ResultFormatError
from ..session.result import ProfileResult, json_value, table_from_dict, table_to_dict, write_atomically

if TYPE_CHECKING:
    from ..session.profiler import MemoryMetrics, MemoryProfiler

__all__ = [
    "ExportError",
    "NA_REP",
    "PRESSURE_LEVELS",
    "category_rows",
    "frame_to_csv_text",
    "metrics_dict",
    "pressure_level",
    "profiler_csv",
    "profiler_dict",
    "profiler_json",
    "profiler_tables",
    "prometheus",
    "read_csv_kwargs",
    "read_csv_tables",
    "read_result_csv",
    "result_to_csv",
    "tables_from_json",
    "write_tables_csv",
]

#: How a missing value is written in CSV files.
NA_REP = "<NA>"
_MANIFEST = "manifest.json"
_CSV_FORMAT = "cgmem_nb.csv"
_PROFILER_FORMAT = "cgmem_nb.ProfilerState"
_VERSION = 1

#: Pressure levels, lowest first; the index is the level's rank (the Prometheus gauge value).
PRESSURE_LEVELS: tuple[str, ...] = ("Low", "Medium", "High", "Critical")
_DEFAULT_THRESHOLDS = (0.70, 0.85, 0.95)


class ExportError(CgmemError, ValueError):
    """An export was asked for something that does not exist (a table name, a directory)."""


# -- pressure ----------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _thresholds() -> tuple[float, float, float]:
    """Medium / High / Critical fractions: the event bus's defaults when it is installed."""
    try:
        from ..engine import events  # type: ignore[attr-defined,unused-ignore]

        t = events.DEFAULT_PRESSURE_THRESHOLDS
        lv = events.PressureLevel
        return (float(t[lv.MEDIUM]), float(t[lv.HIGH]), float(t[lv.CRITICAL]))
    except Exception:  # not merged yet, or a different shape: the documented defaults
        return _DEFAULT_THRESHOLDS


def pressure_level(current: int, limit: int) -> str:
    """``"Low"``, ``"Medium"``, ``"High"`` or ``"Critical"`` for ``current`` bytes against ``limit``."""
    if limit <= 0:
        return "Low"
    fraction = current / limit
    level = 0
    for rank, threshold in enumerate(_thresholds(), start=1):
        if fraction >= threshold:
            level = rank
    return PRESSURE_LEVELS[level]


# -- CSV -----------------------------------------------------------------------------------
def frame_to_csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text in the export's conventions (no index, ``<NA>`` for missing)."""
    return str(frame.to_csv(index=False, na_rep=NA_REP, lineterminator="\n"))


def read_csv_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``pd.read_csv`` that read an export's file exactly (add ``dtype=``)."""
    kwargs: dict[str, Any] = {"keep_default_na": False, "na_values": [NA_REP]}
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3 parses floats round-trip by default
        kwargs["float_precision"] = "round_trip"
    return kwargs


def _read_csv(path: Path, dtypes: Mapping[str, str]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.read_csv(path, dtype=dict(dtypes), **read_csv_kwargs())
    return frame.astype(dict(dtypes)) if len(frame.columns) else frame


def write_tables_csv(
    directory: str | os.PathLike[str], tables: Mapping[str, pd.DataFrame], *, extra: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write each table to ``directory/NAME.csv`` and a ``manifest.json`` with the dtypes.

    Returns ``{table: path}``. Each file is written atomically; the manifest last.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ExportError(f"cannot export CSV into {str(target)!r}: it is a file; give a directory")
    paths: dict[str, Path] = {}
    manifest: dict[str, Any] = {"format": _CSV_FORMAT, "version": _VERSION, "tables": {}}
    for name, frame in tables.items():
        path = target / f"{name}.csv"
        write_atomically(path, frame_to_csv_text(frame))
        paths[name] = path
        manifest["tables"][name] = {"file": path.name, "dtypes": {c: str(t) for c, t in frame.dtypes.items()}}
    if extra:
        manifest.update(extra)
    write_atomically(target / _MANIFEST, json.dumps(manifest, indent=1, allow_nan=False, default=json_value))
    return paths


def read_csv_tables(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read a CSV export (of a result or of the profiler) back as DataFrames with their dtypes."""
    target = Path(directory)
    try:
        manifest = json.loads((target / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultFormatError(
            f"{str(target)!r} does not hold a cgmem_nb CSV export ({exc}); write one with "
            "ProfileResult.to_csv(directory) or MEMORY_PROFILER.export_csv(directory)"
        ) from None
    if manifest.get("format") != _CSV_FORMAT:
        raise ResultFormatError(f"{str(target / _MANIFEST)!r} is not a cgmem_nb CSV manifest")
    return {name: _read_csv(target / spec["file"], spec["dtypes"]) for name, spec in manifest["tables"].items()}


def result_to_csv(result: ProfileResult, directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``result``'s tables as CSV files (one per table) plus ``manifest.json`` with the summary."""
    tables = {name: result.table(name) for name in result.table_names}
    return write_tables_csv(directory, tables, extra={"summary": dict(result.summary)})


def read_result_csv(directory: str | os.PathLike[str]) -> ProfileResult:
    """Rebuild a :class:`ProfileResult` from :func:`result_to_csv` output."""
    tables = read_csv_tables(directory)
    manifest = json.loads((Path(directory) / _MANIFEST).read_text(encoding="utf-8"))
    return ProfileResult(manifest.get("summary", {}), tables)


# -- the profiler's state ----------------------------------------------------------------------
def metrics_dict(profiler: MemoryProfiler, metrics: MemoryMetrics | None = None) -> dict[str, Any]:
    """The profiler's current figures as a JSON-safe dict (``/api/metrics.json``)."""
    m = metrics if metrics is not None else profiler.get_metrics()
    return {
        "time": time.time(),
        "current_bytes": m.current_usage,
        "peak_bytes": m.peak_usage,
        "limit_bytes": m.limit,
        "limit_source": m.limit_source,
        "usage_ratio": m.usage_ratio,
        "pressure_level": pressure_level(m.current_usage, m.limit),
        "traced_bytes": m.traced_bytes,
        "uss_bytes": m.uss_bytes,
        "tracked_bytes": m.tracked_bytes,
        "tracked_peak_bytes": m.tracked_peak_bytes,
        "allocation_count": m.allocation_count,
        "deallocation_count": m.deallocation_count,
        "active_sessions": m.active_sessions,
        "sessions_finished": int(getattr(profiler, "sessions_finished", len(profiler.results))),
        "by_category": dict(m.by_category),
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


def _findings(profiler: MemoryProfiler, method: str) -> pd.DataFrame:
    """``profiler.METHOD()`` as the documented DataFrame (schema ``leaks`` or ``recommendations``)."""
    from ..analysis.model import leaks_frame, recommendations_frame

    found = getattr(profiler, method)()
    return leaks_frame(found) if method == "detect_leaks" else recommendations_frame(found)


def profiler_tables(profiler: MemoryProfiler, *, analysis: bool = True) -> dict[str, pd.DataFrame]:
    """The profiler's state as DataFrames (see :data:`cgmem_nb.schema.PROFILER_TABLES`).

    ``leaks`` and ``recommendations`` (from the analysis) are added when ``analysis`` is true.
    """
    from ..engine.monitor import MONITOR

    metrics = profiler.get_metrics()
    results = profiler.results
    sessions = []
    for i, r in enumerate(results):
        s = r.summary
        sessions.append(
            {
                "index": i,
                "label": s.get("label"),
                "cell": s.get("cell"),
                "tracer": s.get("tracer"),
                "started_at": s.get("started_at"),
                "duration_s": s.get("duration_s"),
                "peak_bytes": s.get("peak_bytes"),
                "retained_bytes": s.get("retained_bytes"),
                "allocated_bytes": s.get("allocated_bytes"),
                "rss_peak_bytes": s.get("rss_peak_bytes"),
                "limit_bytes": s.get("limit_bytes"),
                "interrupted": bool(s.get("interrupted", False)),
                "guard_triggered": bool(s.get("guard_triggered", False)),
                "error": s.get("error"),
            }
        )
    m = metrics_dict(profiler, metrics)
    m.pop("by_category")
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
        for name, method in (("leaks", "detect_leaks"), ("recommendations", "generate_recommendations")):
            tables[name] = _findings(profiler, method)
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
    text = json.dumps(profiler_dict(profiler), indent=indent, allow_nan=False, default=json_value)
    if path is not None:
        write_atomically(path, text)
    return text


def tables_from_json(text: str) -> dict[str, pd.DataFrame]:
    """The tables of a :func:`profiler_json` document, with their dtypes."""
    data = json.loads(text)
    if data.get("format") != _PROFILER_FORMAT:
        raise ResultFormatError(f"not a cgmem_nb profiler export (format={data.get('format')!r})")
    return {name: table_from_dict(spec) for name, spec in data["tables"].items()}


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
    ``leaks_detected`` overrides the leak count (the dashboard passes the leaks it saw
    on the event bus); by default it is the number of findings of ``detect_leaks()``,
    or 0 where the analysis layer is not installed.
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
        leaks = _findings(profiler, "detect_leaks")
        leaks_detected = 0 if leaks is None else len(leaks)

    def families() -> Iterable[Any]:
        for name, doc, value in (
            ("cgmem_memory_current_bytes", "Resident set size of the kernel process.", m["current_bytes"]),
            ("cgmem_memory_peak_bytes", "Peak RSS of the kernel process.", m["peak_bytes"]),
            ("cgmem_memory_limit_bytes", "Memory limit in force.", m["limit_bytes"]),
            ("cgmem_traced_bytes", "Bytes the running tracer sees (0 when no session runs).", m["traced_bytes"] or 0),
            ("cgmem_tracked_bytes", "Manual records: bytes alive now.", m["tracked_bytes"]),
            ("cgmem_pressure_level", "Memory pressure: 0 Low, 1 Medium, 2 High, 3 Critical.", PRESSURE_LEVELS.index(m["pressure_level"])),
            ("cgmem_active_sessions", "Profiling sessions running now.", m["active_sessions"]),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))
        cat = GaugeMetricFamily("cgmem_category_bytes", "Bytes by allocation category.", labels=["category", "source"])
        for row in cats:
            cat.add_metric([row["category"], row["source"]], float(row["bytes"]))
        yield cat
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
