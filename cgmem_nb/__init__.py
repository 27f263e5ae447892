"""cgmem_nb: a memory profiler that lives inside a Jupyter kernel.

``%load_ext cgmem_nb`` then ``%%memprofile`` on a cell. In plain Python::

    from cgmem_nb import MEMORY_PROFILER
    with MEMORY_PROFILER.session() as s:
        work()
    s.result.lines

Importing this package is cheap: pandas, IPython, widgets and Bokeh load only
when used. This module is also where the layers are wired together: it installs
the facade (:mod:`cgmem_nb.facade`) that serves the profiler's analysis, export
and display calls (see :mod:`cgmem_nb.session.hooks` and ``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .categories import AllocationType
from .config import ProfilerConfig
from .errors import CgmemError, ConfigError, SessionError, SizeError
from .session import hooks as _hooks
from .units import format_bytes, parse_size

#: The package version (the one place it is written; pyproject.toml reads it from here).
__version__ = "0.1.0"

__all__ = [
    "EVENT_BUS",
    "MEMORY_PROFILER",
    "AllocationType",
    "CellFinished",
    "CellStarted",
    "CgmemError",
    "ConfigError",
    "Difficulty",
    "EventReceiver",
    "LeakDetected",
    "LeakImpact",
    "LivePanel",
    "MemoryDashboard",
    "MemoryLeak",
    "MemoryMetrics",
    "MemoryPressure",
    "MemoryProfiler",
    "PressureLevel",
    "ProfileResult",
    "ProfilerConfig",
    "ProfilerEvent",
    "Recommendation",
    "RecommendationGenerated",
    "Report",
    "Sample",
    "Session",
    "SessionError",
    "SessionFinished",
    "SessionStarted",
    "SizeError",
    "Summary",
    "TasksFinished",
    "ThresholdBreached",
    "TrackedCache",
    "UsagePattern",
    "WorkerLost",
    "WorkerSample",
    "export",
    "format_bytes",
    "history",
    "load_ipython_extension",
    "parse_size",
    "variables",
]

if TYPE_CHECKING:
    from .engine.events import (
        EVENT_BUS,
        CellFinished,
        CellStarted,
        EventReceiver,
        LeakDetected,
        MemoryPressure,
        ProfilerEvent,
        RecommendationGenerated,
        Sample,
        SessionFinished,
        SessionStarted,
        TasksFinished,
        ThresholdBreached,
        WorkerLost,
        WorkerSample,
    )
    from .outputs import export
    from .outputs.dashboard import MemoryDashboard
    from .outputs.panel import LivePanel
    from .outputs.report import Report
    from .schema import Difficulty, LeakImpact, MemoryLeak, PressureLevel, Recommendation, Summary, UsagePattern
    from .session.cache import TrackedCache
    from .session.history import history
    from .session.profiler import MEMORY_PROFILER, MemoryMetrics, MemoryProfiler
    from .session.result import ProfileResult
    from .session.session import Session
    from .session.variables import variables

_EVENTS = "cgmem_nb.engine.events"
_SCHEMA = "cgmem_nb.schema"

# Public names loaded on first use: `import cgmem_nb` (and the pytest plugin, which every
# pytest run imports) does not pay for pandas, IPython or Bokeh until they are needed.
# A name mapped to None is the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "MEMORY_PROFILER": ("cgmem_nb.session.profiler", "MEMORY_PROFILER"),
    "MemoryMetrics": ("cgmem_nb.session.profiler", "MemoryMetrics"),
    "MemoryProfiler": ("cgmem_nb.session.profiler", "MemoryProfiler"),
    "Session": ("cgmem_nb.session.session", "Session"),
    "ProfileResult": ("cgmem_nb.session.result", "ProfileResult"),
    "TrackedCache": ("cgmem_nb.session.cache", "TrackedCache"),
    "history": ("cgmem_nb.session.history", "history"),
    "variables": ("cgmem_nb.session.variables", "variables"),
    "Summary": (_SCHEMA, "Summary"),
    "Difficulty": (_SCHEMA, "Difficulty"),
    "LeakImpact": (_SCHEMA, "LeakImpact"),
    "PressureLevel": (_SCHEMA, "PressureLevel"),
    "MemoryLeak": (_SCHEMA, "MemoryLeak"),
    "Recommendation": (_SCHEMA, "Recommendation"),
    "UsagePattern": (_SCHEMA, "UsagePattern"),
    "EVENT_BUS": (_EVENTS, "EVENT_BUS"),
    "EventReceiver": (_EVENTS, "EventReceiver"),
    "ProfilerEvent": (_EVENTS, "ProfilerEvent"),
    "Sample": (_EVENTS, "Sample"),
    "MemoryPressure": (_EVENTS, "MemoryPressure"),
    "SessionStarted": (_EVENTS, "SessionStarted"),
    "SessionFinished": (_EVENTS, "SessionFinished"),
    "CellStarted": (_EVENTS, "CellStarted"),
    "CellFinished": (_EVENTS, "CellFinished"),
    "LeakDetected": (_EVENTS, "LeakDetected"),
    "RecommendationGenerated": (_EVENTS, "RecommendationGenerated"),
    "ThresholdBreached": (_EVENTS, "ThresholdBreached"),
    "WorkerSample": (_EVENTS, "WorkerSample"),
    "TasksFinished": (_EVENTS, "TasksFinished"),
    "WorkerLost": (_EVENTS, "WorkerLost"),
    "Report": ("cgmem_nb.outputs.report", "Report"),
    "LivePanel": ("cgmem_nb.outputs.panel", "LivePanel"),
    "MemoryDashboard": ("cgmem_nb.outputs.dashboard", "MemoryDashboard"),
    "export": ("cgmem_nb.outputs.export", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        loaded = importlib.import_module(module)
        value = loaded if attr is None else getattr(loaded, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cgmem_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cgmem_nb``: register the magics."""
    from .integrations.extension import load_ipython_extension as load

    load(ipython)


def _load_facade() -> _hooks.Facade:
    from .facade import FACADE

    return FACADE


# The composition root: the profiler's analysis, export and display calls are served by
# the top-level facade, imported the first time one of them is made.
_hooks.install_facade(_load_facade)
