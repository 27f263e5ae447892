"""``%load_ext cgmem_nb``: registers every magics class listed here, and announces cells.

Each capability keeps its magics in a module of its own and adds one line to
:data:`MAGICS`; this is the only place that knows them all. The extension also
publishes a ``CellStarted`` / ``CellFinished`` event around every cell while
anyone listens to live events, so the live feed marks cells on the timeline of
the ``%mempanel`` panel and the ``%memdash`` dashboard.
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any

from ..engine.events.bus import EVENT_BUS
from ..engine.events.kinds import CellFinished, CellStarted
from ..errors import CgmemError
from ..session import notebook
from ..session.profiler import MEMORY_PROFILER

#: ``(module, class name)`` of every Magics class the extension registers.
MAGICS: list[tuple[str, str]] = [
    ("cgmem_nb.integrations.magics", "CgmemMagics"),
    ("cgmem_nb.integrations.panel_magics", "PanelMagics"),
    ("cgmem_nb.integrations.dashboard_magics", "DashboardMagics"),
    ("cgmem_nb.integrations.analysis_magics", "AnalysisMagics"),
]

_ANNOUNCING: weakref.WeakSet[Any] = weakref.WeakSet()


def _label(number: int | None) -> str:
    return f"In[{number}]" if number is not None else "cell"


def _publishing() -> bool:
    try:
        return MEMORY_PROFILER.publishing
    except CgmemError:  # a bad MEMORY_PROFILER_* variable: the magics report it, not every cell
        return False


def _cell_started(info: Any = None) -> None:
    if _publishing():
        number = notebook.current_cell()
        EVENT_BUS.publish(CellStarted(number, _label(number)))


def _cell_finished(result: Any = None) -> None:
    if _publishing():
        number = getattr(result, "execution_count", None)
        number = number if isinstance(number, int) else notebook.current_cell()
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        EVENT_BUS.publish(CellFinished(number, _label(number), None if error is None else f"{type(error).__name__}: {error}"))


def announce_cells(ipython: Any) -> None:
    """Publish cell events for ``ipython``'s cells (once per shell)."""
    if ipython in _ANNOUNCING:
        return
    ipython.events.register("pre_run_cell", _cell_started)
    ipython.events.register("post_run_cell", _cell_finished)
    _ANNOUNCING.add(ipython)


def load_ipython_extension(ipython: Any) -> None:
    """Register every magics class in :data:`MAGICS` with ``ipython`` and announce its cells."""
    for module, name in MAGICS:
        ipython.register_magics(getattr(importlib.import_module(module), name))
    announce_cells(ipython)
