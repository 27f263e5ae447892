"""cgmem_nb: a memory profiler that lives inside a Jupyter kernel.

``%load_ext cgmem_nb`` then ``%%memprofile`` on a cell. In plain Python::

    from cgmem_nb import MEMORY_PROFILER
    with MEMORY_PROFILER.session() as s:
        work()
    s.result.lines

Importing this package is cheap: IPython, widgets and Bokeh load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "MEMORY_PROFILER",
    "AllocationType",
    "CgmemError",
    "ConfigError",
    "Difficulty",
    "LeakImpact",
    "MemoryLeak",
    "MemoryMetrics",
    "MemoryProfiler",
    "ProfileResult",
    "ProfilerConfig",
    "Recommendation",
    "Report",
    "SessionError",
    "SizeError",
    "TrackedCache",
    "UsagePattern",
    "format_bytes",
    "history",
    "load_ipython_extension",
    "parse_size",
    "variables",
]

from .categories import AllocationType
from .config import ProfilerConfig
from .errors import CgmemError, ConfigError, SessionError, SizeError
from .units import format_bytes, parse_size

if TYPE_CHECKING:
    from .analysis.model import Difficulty, LeakImpact, MemoryLeak, Recommendation, UsagePattern
    from .outputs.report import Report
    from .session.cache import TrackedCache
    from .session.profiler import MEMORY_PROFILER, MemoryMetrics, MemoryProfiler
    from .session.result import ProfileResult
    from .session.history import history
    from .session.variables import variables

# Loaded on first use, so that `import cgmem_nb` (and the pytest plugin, which every
# pytest run imports) does not pay for pandas until a session or a result is needed.
_LAZY = {
    "MEMORY_PROFILER": ("cgmem_nb.session.profiler", "MEMORY_PROFILER"),
    "MemoryMetrics": ("cgmem_nb.session.profiler", "MemoryMetrics"),
    "MemoryProfiler": ("cgmem_nb.session.profiler", "MemoryProfiler"),
    "ProfileResult": ("cgmem_nb.session.result", "ProfileResult"),
    "Report": ("cgmem_nb.outputs.report", "Report"),
    "TrackedCache": ("cgmem_nb.session.cache", "TrackedCache"),
    "history": ("cgmem_nb.session.history", "history"),
    "Difficulty": ("cgmem_nb.analysis.model", "Difficulty"),
    "LeakImpact": ("cgmem_nb.analysis.model", "LeakImpact"),
    "MemoryLeak": ("cgmem_nb.analysis.model", "MemoryLeak"),
    "Recommendation": ("cgmem_nb.analysis.model", "Recommendation"),
    "UsagePattern": ("cgmem_nb.analysis.model", "UsagePattern"),
    "variables": ("cgmem_nb.session.variables", "variables"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cgmem_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cgmem_nb``: register the magics."""
    from .integrations.extension import load_ipython_extension as load

    load(ipython)
