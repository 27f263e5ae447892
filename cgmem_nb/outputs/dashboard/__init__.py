"""``MemoryDashboard``: a live web dashboard of the kernel, with ``/metrics`` and ``/api/...``.

>>> from cgmem_nb import MemoryDashboard
>>> dash = MemoryDashboard()
>>> url = dash.start_server(port=0)      # port 0 picks a free port
>>> dash.stop()

The package has one module per job: :mod:`~cgmem_nb.outputs.dashboard.server`
(the server thread, start and stop, the data), :mod:`~cgmem_nb.outputs.dashboard.page`
(one Bokeh document per browser tab, laid out from the chart registry),
:mod:`~cgmem_nb.outputs.dashboard.api` (``/metrics`` and ``/api/...``) and
:mod:`~cgmem_nb.outputs.dashboard.auth` (token and origin checks).
"""

from __future__ import annotations

from .auth import TOKEN_COOKIE
from .server import DashboardError, MemoryDashboard

__all__ = ["TOKEN_COOKIE", "DashboardError", "MemoryDashboard"]
