"""``%load_ext cgmem_nb``: registers every magics class listed here.

Each capability keeps its magics in a module of its own and adds one line to
:data:`MAGICS`; this is the only place that knows them all.
"""

from __future__ import annotations

import importlib
from typing import Any

#: ``(module, class name)`` of every Magics class the extension registers.
MAGICS: list[tuple[str, str]] = [
    ("cgmem_nb.integrations.magics", "CgmemMagics"),
    ("cgmem_nb.integrations.panel_magics", "PanelMagics"),
    ("cgmem_nb.integrations.dashboard_magics", "DashboardMagics"),
    ("cgmem_nb.integrations.analysis_magics", "AnalysisMagics"),
]


def load_ipython_extension(ipython: Any) -> None:
    """Register every magics class in :data:`MAGICS` with ``ipython``."""
    for module, name in MAGICS:
        ipython.register_magics(getattr(importlib.import_module(module), name))
