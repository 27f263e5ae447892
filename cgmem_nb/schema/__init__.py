"""The data contract every layer shares: table schemas and the typed records they hold.

A leaf of the house: it imports nothing of cgmem_nb but the core ``units``, so the
engine, the session, the analysis, the outputs and the integrations can all name these types.

* :mod:`~cgmem_nb.schema.tables`: every DataFrame's columns and dtypes (:data:`TABLES`,
  :data:`PROFILER_TABLES`, :func:`make_frame`, :func:`records_frame`);
* :mod:`~cgmem_nb.schema.summary`: :class:`Summary`, a session's headline figures;
* :mod:`~cgmem_nb.schema.findings`: :class:`MemoryLeak`, :class:`UsagePattern`,
  :class:`Recommendation` and their frames;
* :mod:`~cgmem_nb.schema.levels`: the Low..Critical scale (:class:`PressureLevel`,
  also named :data:`LeakImpact`) and :class:`Difficulty`;
* :mod:`~cgmem_nb.schema.readable`: :class:`~cgmem_nb.schema.readable.ReadableFrame`, the
  DataFrame the helpers return (sizes, times and fixes readable on display, raw data underneath;
  imported on first use, as it needs pandas).
"""

from __future__ import annotations

from .findings import MemoryLeak, Recommendation, UsagePattern, leaks_frame, patterns_frame, recommendations_frame
from .levels import Difficulty, LeakImpact, PressureLevel
from .summary import GuardLine, GuardReport, Summary
from .tables import KERNEL, PROFILER_TABLES, TABLES, Column, columns_of, make_frame, records_frame, schema_markdown

__all__ = [
    "KERNEL",
    "PROFILER_TABLES",
    "TABLES",
    "Column",
    "Difficulty",
    "GuardLine",
    "GuardReport",
    "LeakImpact",
    "MemoryLeak",
    "PressureLevel",
    "Recommendation",
    "Summary",
    "UsagePattern",
    "columns_of",
    "leaks_frame",
    "make_frame",
    "patterns_frame",
    "recommendations_frame",
    "records_frame",
    "schema_markdown",
]
