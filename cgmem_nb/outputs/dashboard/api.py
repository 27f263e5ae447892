"""The dashboard's HTTP API on the page's port: ``/metrics`` and ``/api/...`` (GET only, read-only).

* ``/metrics``: Prometheus text (:meth:`MemoryDashboard.prometheus_text`);
* ``/api/metrics.json``: current figures, rates and pressure (:meth:`MemoryDashboard.metrics_json`);
* ``/api/export.json`` and ``/api/export.csv?table=NAME``: the same content as
  ``MEMORY_PROFILER.export_json()`` / ``export_csv()``.

Handlers run on the server's loop; each payload is computed on an executor
thread so a slow export never stalls the pages.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ...session.serialize import dumps, frame_to_csv_text
from .. import export

if TYPE_CHECKING:
    from ...session.profiler import MemoryProfiler

__all__ = ["Served", "access_log", "handlers"]


class Served(Protocol):
    """What the API serves (a ``MemoryDashboard``)."""

    @property
    def profiler(self) -> MemoryProfiler:
        """The profiler shown."""

    def prometheus_text(self) -> str:
        """``/metrics``."""

    def metrics_json(self) -> dict[str, Any]:
        """``/api/metrics.json``."""

log = logging.getLogger(__package__)  # "cgmem_nb.outputs.dashboard": one logger for the package


def access_log(handler: Any) -> None:
    """Requests go to the ``cgmem_nb.outputs.dashboard`` logger at DEBUG (server errors at
    ERROR), not to tornado's access log: inside a kernel, a refused request would
    otherwise print a warning into whatever cell is running."""
    status = handler.get_status()
    request = handler.request
    log.log(
        logging.ERROR if status >= 500 else logging.DEBUG,
        "%d %s %s (%s) %.2fms", status, request.method, request.path, request.remote_ip, 1000.0 * request.request_time(),
    )


def handlers(dash: Served) -> list[tuple[str, Any, dict[str, Any]]]:
    """The plain tornado handlers of ``dash``'s API."""
    from tornado.ioloop import IOLoop
    from tornado.web import HTTPError, RequestHandler

    async def off_loop(func: Callable[[], Any]) -> Any:
        return await IOLoop.current().run_in_executor(None, func)

    class _Base(RequestHandler):
        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")

    class Metrics(_Base):
        async def get(self) -> None:
            text = await off_loop(dash.prometheus_text)
            self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.finish(text)

    class MetricsJSON(_Base):
        async def get(self) -> None:
            data = await off_loop(dash.metrics_json)
            self.set_header("Content-Type", "application/json")
            self.finish(dumps(data))

    class ExportJSON(_Base):
        async def get(self) -> None:
            text = await off_loop(lambda: export.profiler_json(dash.profiler))
            self.set_header("Content-Type", "application/json")
            self.finish(text)

    class ExportCSV(_Base):
        async def get(self) -> None:
            name = self.get_query_argument("table", None)
            tables = await off_loop(lambda: export.profiler_tables(dash.profiler))
            if not name:
                raise HTTPError(400, reason=f"give ?table=NAME; tables: {', '.join(sorted(tables))}")
            if name not in tables:
                raise HTTPError(404, reason=f"no table {name!r}; tables: {', '.join(sorted(tables))}")
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'inline; filename="{name}.csv"')
            self.finish(frame_to_csv_text(tables[name]))

    return [
        (r"/metrics", Metrics, {}),
        (r"/api/metrics\.json", MetricsJSON, {}),
        (r"/api/export\.json", ExportJSON, {}),
        (r"/api/export\.csv", ExportCSV, {}),
    ]
