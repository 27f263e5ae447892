"""``MemoryDashboard``: a Bokeh server in the kernel, plus ``/metrics`` and ``/api/...``.

>>> dash = MemoryDashboard()
>>> url = dash.start_server(port=0)      # port 0 picks a free port
>>> dash.stop()

What runs where:

* **Data**: a monitor subscription (:data:`~cgmem_nb.engine.monitor.MONITOR`, every
  ``interval`` seconds) turns each tick into a sample (RSS, traced bytes, limit,
  pressure, rates) kept in a bounded buffer. When the event bus
  (``cgmem_nb.engine.events``) is installed, leak and recommendation events are
  collected too; ``detect_leaks()`` / ``generate_recommendations()`` are polled
  every ``analysis_interval`` seconds where the profiler has them.
* **Server**: a thread of its own with a fresh asyncio loop, running Bokeh's
  ``BokehTornado`` application and a tornado ``HTTPServer`` (never
  ``run_until_shutdown()``, which wants the main thread). The kernel's own loop is
  untouched, so the page keeps updating while cells run.
* **Pages**: every browser tab gets its own Bokeh ``Document``. A periodic callback
  of that document (on the server thread, holding the document's lock) streams new
  samples into its sources every ``update_ms`` milliseconds (4 times a second by
  default). No document is modified from another thread. Documents are dropped when
  their session is destroyed.
* **HTTP API** on the same port: ``/metrics`` (Prometheus text), ``/api/metrics.json``,
  ``/api/export.json`` and ``/api/export.csv?table=NAME`` (the same content as
  ``MEMORY_PROFILER.export_json()`` / ``export_csv()``). All are GET-only and read-only.

Security: binds 127.0.0.1 by default. Any other address needs a token (generated and
printed when not given); with a token, every HTTP request and the WebSocket handshake
must carry it (``?token=``, an ``Authorization: Token ...`` / ``Bearer ...`` header,
or the ``cgmem_dashboard_token`` cookie the page sets when opened with ``?token=``).
The WebSocket origin allow-list is exactly ``127.0.0.1:PORT``, ``localhost:PORT`` and
``HOST:PORT`` for the host given.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import ipaddress
import logging
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Sequence
from urllib.parse import quote

from ..errors import CgmemError
from ..session.result import json_value
from . import export

if TYPE_CHECKING:
    from ..engine.monitor import Subscription, Tick
    from ..session.profiler import MemoryProfiler

log = logging.getLogger(__name__)

__all__ = ["DashboardError", "MemoryDashboard", "TOKEN_COOKIE"]

#: Cookie that carries the token after the page was opened with ``?token=``.
TOKEN_COOKIE = "cgmem_dashboard_token"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_PRESSURE_COLORS = {"Low": "#2ca02c", "Medium": "#bcbd22", "High": "#ff7f0e", "Critical": "#d62728"}


class DashboardError(CgmemError, RuntimeError):
    """The dashboard could not start or was used in a way it does not support."""


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class DashboardSample:
    """One point of the dashboard's timeline."""

    seq: int
    #: Milliseconds since the epoch.
    t: float
    rss_bytes: int
    traced_bytes: int | None
    limit_bytes: int
    critical_bytes: int
    alloc_bytes_s: float
    dealloc_bytes_s: float


# -- data ------------------------------------------------------------------------------------------
class _Feed:
    """Samples, markers and findings collected for the pages (thread-safe)."""

    def __init__(self, profiler: MemoryProfiler, *, interval: float, history: int) -> None:
        self.profiler = profiler
        self.interval = interval
        self._lock = threading.Lock()
        self.samples: deque[DashboardSample] = deque(maxlen=history)
        self.markers: deque[tuple[int, float, str, str]] = deque(maxlen=400)  # (seq, t_ms, label, kind)
        self.metrics: dict[str, Any] = {}
        self.categories: list[dict[str, Any]] = []
        self.leaks: list[dict[str, Any]] = []
        self.recommendations: list[dict[str, Any]] = []
        self.event_leaks: list[dict[str, Any]] = []
        self.event_recommendations: list[dict[str, Any]] = []
        #: Bumped when categories / findings change, so pages redraw only then.
        self.version = 0
        self.leaks_seen = 0
        self._seq = 0
        self._marker_seq = 0
        self._finished_seen = 0
        self._last_metrics_at = 0.0
        self._last_level: int | None = None
        self._prev: tuple[float, int, bool] | None = None
        self._sub: Subscription | None = None
        self._bus_sub: Any = None

    # life cycle
    def start(self) -> None:
        from ..engine.monitor import MONITOR

        self._finished_seen = int(getattr(self.profiler, "sessions_finished", 0))
        self._refresh_metrics(time.time())
        self._sub = MONITOR.subscribe(self._on_tick, self.interval)
        try:
            events = importlib.import_module("cgmem_nb.engine.events")
        except ImportError:
            events = None
        if events is not None:
            try:
                self._bus_sub = events.EVENT_BUS.subscribe(
                    self._on_event, types=(events.LeakDetected, events.RecommendationGenerated)
                )
            except Exception:  # a bus of another shape: run without events
                log.exception("cgmem_nb dashboard could not subscribe to the event bus")

    def stop(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        if self._bus_sub is not None:
            self._bus_sub.close()
            self._bus_sub = None

    # inputs
    def _on_tick(self, tick: Tick) -> None:
        now = tick.wall
        if now - self._last_metrics_at >= 0.5:
            self._refresh_metrics(now)
        m = self.metrics
        traced = tick.traced_bytes is not None
        level_bytes = tick.traced_bytes if tick.traced_bytes is not None else tick.rss_bytes
        alloc = dealloc = 0.0
        # a rate only between two readings of the same measure (a session starting or
        # ending switches between RSS and traced bytes, which is no allocation)
        if self._prev is not None and now > self._prev[0] and self._prev[2] == traced:
            rate = (level_bytes - self._prev[1]) / (now - self._prev[0])
            alloc, dealloc = max(rate, 0.0), max(-rate, 0.0)
        self._prev = (now, level_bytes, traced)
        limit = int(m.get("limit_bytes") or 0)
        fraction = float(getattr(getattr(self.profiler, "config", None), "guard_fraction", 0.95))
        with self._lock:
            self._seq += 1
            self.samples.append(
                DashboardSample(
                    self._seq, now * 1000.0, tick.rss_bytes, tick.traced_bytes, limit, int(limit * fraction), alloc, dealloc
                )
            )
            m["current_bytes"] = tick.rss_bytes
            m["traced_bytes"] = tick.traced_bytes
            m["pressure_level"] = export.pressure_level(tick.rss_bytes, limit)
            m["usage_ratio"] = tick.rss_bytes / limit if limit else 0.0
            m["alloc_bytes_s"] = alloc
            m["dealloc_bytes_s"] = dealloc

    def _refresh_metrics(self, now: float) -> None:
        self._last_metrics_at = now
        metrics = self.profiler.get_metrics()
        values = export.metrics_dict(self.profiler, metrics)
        cats = export.category_rows(self.profiler, metrics)
        finished = int(values.get("sessions_finished", 0))
        new_results = []
        if finished != self._finished_seen:
            count = min(finished - self._finished_seen, len(self.profiler.results))
            new_results = self.profiler.results[-count:] if count > 0 else []
            self._finished_seen = finished
        with self._lock:
            values.setdefault("alloc_bytes_s", self.metrics.get("alloc_bytes_s", 0.0))
            values.setdefault("dealloc_bytes_s", self.metrics.get("dealloc_bytes_s", 0.0))
            self.metrics = values
            if cats != self.categories:
                self.categories = cats
                self.version += 1
        for r in new_results:
            s = r.summary
            try:
                start = datetime.fromisoformat(str(s.get("started_at"))).timestamp() * 1000.0
            except ValueError:
                continue
            label = str(s.get("label") or "session")
            self.mark(label, "start", start)
            self.mark(label, "end", start + float(s.get("duration_s") or 0.0) * 1000.0)

    def mark(self, label: str, kind: str = "start", t_ms: float | None = None) -> None:
        """Add a cell boundary mark (``kind`` ``"start"`` or ``"end"``)."""
        with self._lock:
            self._marker_seq += 1
            self.markers.append((self._marker_seq, time.time() * 1000.0 if t_ms is None else t_ms, label, kind))

    def _on_event(self, event: Any) -> None:
        kind = getattr(event, "kind", "")
        payload = getattr(event, "leak", None) if kind == "leak_detected" else getattr(event, "recommendation", None)
        row = _flat(payload)
        row.setdefault("time", float(getattr(event, "timestamp", time.time())))
        with self._lock:
            if kind == "leak_detected":
                self.event_leaks.append(row)
                del self.event_leaks[:-200]
                self.leaks_seen += 1
            else:
                self.event_recommendations.append(row)
                del self.event_recommendations[:-200]
            self.version += 1

    def poll_analysis(self) -> None:
        """Ask the analysis layer for leaks and recommendations, where the profiler has it."""
        found: dict[str, list[dict[str, Any]]] = {}
        for name, method in (("leaks", "detect_leaks"), ("recommendations", "generate_recommendations")):
            try:
                frame = export._findings(self.profiler, method)
            except Exception:
                log.exception("cgmem_nb dashboard: %s() failed", method)
                frame = None
            found[name] = [] if frame is None else [_flat(r) for r in frame.to_dict("records")]
        with self._lock:
            if found["leaks"] != self.leaks or found["recommendations"] != self.recommendations:
                self.leaks, self.recommendations = found["leaks"], found["recommendations"]
                self.version += 1

    # outputs
    def read(self, after_seq: int, after_marker: int) -> tuple[list[DashboardSample], list[tuple[int, float, str, str]], dict[str, Any], int]:
        with self._lock:
            samples = [s for s in self.samples if s.seq > after_seq] if self.samples and self.samples[-1].seq > after_seq else []
            markers = [m for m in self.markers if m[0] > after_marker]
            return samples, markers, dict(self.metrics), self.version

    def findings(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        with self._lock:
            return list(self.categories), self.leaks + self.event_leaks, self.recommendations + self.event_recommendations


def _flat(item: Any) -> dict[str, Any]:
    """A finding as a flat row of plain values."""
    if item is None:
        return {}
    if isinstance(item, dict):
        raw = dict(item)
    elif hasattr(item, "__dataclass_fields__"):
        raw = {name: getattr(item, name) for name in item.__dataclass_fields__}
    elif hasattr(item, "to_dict"):
        raw = dict(item.to_dict())
    else:
        raw = {"description": str(item)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None or isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
        else:
            out[str(key)] = str(getattr(value, "value", value))
    return out


def _first(row: dict[str, Any], names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    return default


# -- server ------------------------------------------------------------------------------------------
class MemoryDashboard:
    """A live web dashboard of a profiler, served from a background thread of the kernel.

    Args:
        profiler: the profiler to show (default: the process-wide ``MEMORY_PROFILER``).
        interval: seconds between samples.
        update_ms: milliseconds between page updates (each open page).
        history: samples kept (and shown) per page.
        analysis_interval: seconds between polls of ``detect_leaks()`` /
            ``generate_recommendations()`` (when the profiler has them).
        unused_session_lifetime_ms: how long a closed page's document is kept.
    """

    def __init__(
        self,
        profiler: MemoryProfiler | None = None,
        *,
        interval: float = 0.25,
        update_ms: int = 250,
        history: int = 2400,
        analysis_interval: float = 10.0,
        unused_session_lifetime_ms: int = 5000,
    ) -> None:
        if profiler is None:
            from ..session.profiler import MEMORY_PROFILER

            profiler = MEMORY_PROFILER
        if not 0.01 <= interval <= 60:
            raise DashboardError(f"interval={interval!r} is not accepted: give seconds from 0.01 to 60")
        if not 50 <= update_ms <= 60_000:
            raise DashboardError(f"update_ms={update_ms!r} is not accepted: give milliseconds from 50 to 60000")
        self.profiler = profiler
        self.interval = interval
        self.update_ms = update_ms
        self.history = history
        self.analysis_interval = analysis_interval
        self.unused_session_lifetime_ms = unused_session_lifetime_ms
        self._feed: _Feed | None = None
        self._thread: threading.Thread | None = None
        self._loop: Any = None
        self._host = "127.0.0.1"
        self._port: int | None = None
        self._token: str | None = None
        self._docs: set[Any] = set()
        self._docs_lock = threading.Lock()
        self._prom_cache: tuple[float, str] = (0.0, "")
        self._start_lock = threading.Lock()

    # -- public state ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the server thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int | None:
        """The port served (the one picked when started with port 0), or None when stopped."""
        return self._port if self.running else None

    @property
    def host(self) -> str:
        """The address bound."""
        return self._host

    @property
    def token(self) -> str | None:
        """The token every request must carry (None: no token required)."""
        return self._token

    @property
    def url(self) -> str | None:
        """The page's URL (with ``?token=`` when a token is required), or None when stopped."""
        if not self.running or self._port is None:
            return None
        host = self._host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        base = f"http://{host}:{self._port}/"
        return base + (f"?token={quote(self._token)}" if self._token else "")

    @property
    def open_sessions(self) -> int:
        """Browser sessions (documents) alive now."""
        with self._docs_lock:
            return len(self._docs)

    def mark_cell(self, label: str, kind: str = "start") -> None:
        """Mark a cell boundary on the timeline (the ``%memdash`` magic does this for every cell)."""
        if self._feed is not None:
            self._feed.mark(label, kind)

    # -- start / stop -----------------------------------------------------------------------------
    def start_server(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
        *,
        allow_origins: Sequence[str] = (),
        quiet: bool = False,
    ) -> str:
        """Start serving and return the URL.

        Args:
            port: the port (default ``config.dashboard_port``, 8080); 0 picks a free one.
            host: the address to bind. Anything but loopback requires a token.
            token: the token to require; generated (and printed) for a non-loopback
                host when not given. On loopback, a given token is enforced too.
            allow_origins: extra ``host:port`` WebSocket origins (e.g. for a proxy).
            quiet: do not print the URL.

        Raises:
            DashboardError: already running, the port is in use, or bad arguments.
        """
        with self._start_lock:
            if self.running:
                raise DashboardError(f"the dashboard is already running at {self.url}; call stop() first")
            if port is None:
                port = int(getattr(self.profiler.config, "dashboard_port", 8080))
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise DashboardError(f"port={port!r} is not accepted: give a port from 0 to 65535 (0 picks a free one)")
            if not isinstance(host, str) or not host:
                raise DashboardError(f"host={host!r} is not accepted: give an address such as '127.0.0.1'")
            generated = False
            if token is not None and (not isinstance(token, str) or len(token) < 8):
                raise DashboardError("token is not accepted: give a string of at least 8 characters, or None to generate one")
            if token is None and not _is_loopback(host):
                token, generated = secrets.token_urlsafe(24), True
            try:
                sockets = _bind(host, port)
            except OSError as exc:
                raise DashboardError(
                    f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}. "
                    + ("Another server (or another dashboard) uses this port; " if port else "")
                    + "choose another port, or port=0 to pick a free one"
                ) from None
            self._host, self._port, self._token = host, sockets[0].getsockname()[1], token
            origins = {f"127.0.0.1:{self._port}", f"localhost:{self._port}"}
            if host not in ("0.0.0.0", "::", ""):
                origins.add(f"[{host}]:{self._port}" if ":" in host else f"{host}:{self._port}")
            origins.update(allow_origins)
            self._feed = _Feed(self.profiler, interval=self.interval, history=self.history)
            self._feed.start()
            started = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._serve,
                args=(sockets, sorted(origins), started, failure),
                name=f"cgmem-dashboard-{self._port}",
                daemon=True,
            )
            self._thread.start()
            if not started.wait(30) or failure:
                self._feed.stop()
                self._thread.join(5)
                self._thread = None
                for s in sockets:
                    s.close()
                raise DashboardError(f"the dashboard server did not start: {failure[0] if failure else 'timed out'}")
            url = self.url or ""
            if not quiet:
                print(f"cgmem_nb dashboard: {url}")
                if generated:
                    print(f"cgmem_nb dashboard token (required for every request): {token}")
            return url

    def stop(self) -> None:
        """Stop the server, close every page's session and free the port. Idempotent."""
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and thread.is_alive():
            loop.add_callback(loop.stop)
            thread.join(15)
        self._thread = None
        self._loop = None
        if self._feed is not None:
            self._feed.stop()
            self._feed = None
        with self._docs_lock:
            self._docs.clear()
        self._port = None

    def __enter__(self) -> "MemoryDashboard":
        if not self.running:
            self.start_server()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<MemoryDashboard {self.url or 'stopped'}>"

    # -- the server thread ---------------------------------------------------------------------
    def _serve(self, sockets: list[socket.socket], origins: list[str], started: threading.Event, failure: list[BaseException]) -> None:
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import BaseServer
        from tornado.httpserver import HTTPServer
        from tornado.ioloop import IOLoop, PeriodicCallback

        asyncio.set_event_loop(asyncio.new_event_loop())
        io_loop = IOLoop.current()
        server = http = None
        try:
            app_class = _app_class()
            tornado_app = app_class(
                {"/": Application(FunctionHandler(self._make_document))},
                extra_websocket_origins=origins,
                extra_patterns=_handlers(self),
                check_unused_sessions_milliseconds=min(17000, max(200, self.unused_session_lifetime_ms // 2)),
                unused_session_lifetime_milliseconds=self.unused_session_lifetime_ms,
                token=self._token,
                log_function=_access_log,
            )
            http = HTTPServer(tornado_app, xheaders=False)
            http.add_sockets(sockets)
            server = BaseServer(io_loop, tornado_app, http)
            server.start()
            poll = PeriodicCallback(self._poll_analysis, max(1000, int(self.analysis_interval * 1000)))
            poll.start()
            io_loop.add_callback(self._poll_analysis)
            self._loop = io_loop
        except BaseException as exc:  # reported to start_server
            failure.append(exc)
            started.set()
            io_loop.close(all_fds=False)
            return
        started.set()
        try:
            io_loop.start()
        finally:
            poll.stop()
            try:
                server.stop(wait=False)
            except Exception:
                log.exception("cgmem_nb dashboard: stopping the Bokeh server failed")
            for s in sockets:
                s.close()
            io_loop.close(all_fds=True)

    def _poll_analysis(self) -> None:
        feed = self._feed
        if feed is not None and self._loop is not None:
            self._loop.run_in_executor(None, feed.poll_analysis)

    # -- HTTP payloads (called on an executor thread) ------------------------------------------------------
    def prometheus_text(self) -> str:
        """``/metrics``: Prometheus text (recomputed at most 4 times a second)."""
        at, text = self._prom_cache
        now = time.monotonic()
        if now - at > 0.25 or not text:
            feed = self._feed
            # leak events seen on the bus, or the leaks the last analysis poll found
            leaks = max(feed.leaks_seen, len(feed.leaks)) if feed is not None else 0
            text = export.prometheus(self.profiler, leaks_detected=leaks)
            self._prom_cache = (now, text)
        return text

    def metrics_json(self) -> dict[str, Any]:
        """``/api/metrics.json``: current figures, rates and pressure."""
        values = export.metrics_dict(self.profiler)
        if self._feed is not None:
            _, _, live, _ = self._feed.read(1 << 62, 1 << 62)
            values["alloc_bytes_s"] = live.get("alloc_bytes_s", 0.0)
            values["dealloc_bytes_s"] = live.get("dealloc_bytes_s", 0.0)
            values["samples"] = len(self._feed.samples)
        values["open_sessions"] = self.open_sessions
        return values

    # -- one page ------------------------------------------------------------------------------------
    def _make_document(self, doc: Any) -> None:
        from bokeh.layouts import column, row
        from bokeh.models.widgets.markups import Div

        from . import plots

        feed = self._feed
        if feed is None:
            return
        header = Div(text="", sizing_mode="stretch_width", styles={"font-family": "sans-serif"})
        timeline, tl_source = plots.timeline_figure()
        markers = plots.cell_markers(timeline)
        rates, rate_source = plots.rate_figure()
        rates.x_range = timeline.x_range
        cats, cat_source = plots.category_figure()
        cat_table = plots.category_table(cat_source)
        leak_fig, leak_source = plots.leak_timeline_figure()
        leak_fig.x_range = timeline.x_range
        leak_table, leak_rows = plots.findings_table(["time", "holder", "size_bytes", "impact", "description"], height=160)
        rec_table, rec_rows = plots.findings_table(["priority", "description", "action", "savings_bytes", "difficulty"], height=180)
        wrap = [":host { flex-wrap: wrap; gap: 8px; }"]
        half = {"min_width": 340, "sizing_mode": "stretch_width"}
        for item in (cats, cat_table, leak_fig, leak_table):
            item.update(**half)
        layout: Any = column(  # type: ignore[call-overload]
            header,
            timeline,
            rates,
            row(  # type: ignore[call-overload]
                column(cats, cat_table, **half),  # type: ignore[call-overload]
                column(leak_fig, leak_table, **half),  # type: ignore[call-overload]
                sizing_mode="stretch_width",
                stylesheets=wrap,
            ),
            Div(text="<b>Recommendations</b>", sizing_mode="stretch_width"),
            rec_table,
            sizing_mode="stretch_width",
            styles={"padding": "4px"},
        )
        layout.name = "cgmem-dashboard"
        tl_source.name, rate_source.name, cat_source.name, markers.name = "timeline", "rates", "categories", "markers"
        leak_source.name, leak_rows.name, rec_rows.name = "leak_timeline", "leaks", "recommendations"
        doc.title = "cgmem_nb memory dashboard"
        doc.add_root(layout)
        state: dict[str, Any] = {"seq": 0, "marker": 0, "version": -1, "header": ""}
        limit_lines = [r for r in timeline.renderers if r.name in ("limit", "critical")]

        def update() -> None:
            session = getattr(doc.session_context, "session", None)
            if session is not None and session.connection_count == 0:
                return  # the tab is closed; the document waits to be destroyed
            samples, new_marks, metrics, version = feed.read(state["seq"], state["marker"])
            if samples:
                state["seq"] = samples[-1].seq
                tl_source.stream(
                    {
                        "t": [s.t for s in samples],
                        "rss_mb": [s.rss_bytes / plots.MB for s in samples],
                        "traced_mb": [float("nan") if s.traced_bytes is None else s.traced_bytes / plots.MB for s in samples],
                        "limit_mb": [s.limit_bytes / plots.MB for s in samples],
                        "critical_mb": [s.critical_bytes / plots.MB for s in samples],
                        "rss_bytes": [s.rss_bytes for s in samples],
                        "traced_bytes": [s.traced_bytes for s in samples],
                    },
                    rollover=self.history,
                )
                # the limit lines show once usage is within reach of them
                near = max(s.rss_bytes for s in samples) >= 0.5 * samples[-1].limit_bytes
                for r in limit_lines:
                    if r.visible != near:
                        r.visible = near
                rate_source.stream(
                    {
                        "t": [s.t for s in samples],
                        "alloc_mb_s": [s.alloc_bytes_s / plots.MB for s in samples],
                        "dealloc_mb_s": [s.dealloc_bytes_s / plots.MB for s in samples],
                    },
                    rollover=self.history,
                )
            if new_marks:
                state["marker"] = new_marks[-1][0]
                markers.stream(
                    {
                        "t": [m[1] for m in new_marks],
                        "label": [m[2] for m in new_marks],
                        "kind": [m[3] for m in new_marks],
                        "color": ["#444444" if m[3] == "start" else "#aaaaaa" for m in new_marks],
                    },
                    rollover=400,
                )
            text = _header_html(metrics, self.open_sessions)
            if text != state["header"]:
                header.text = state["header"] = text
            if version != state["version"]:
                state["version"] = version
                categories, leaks, recs = feed.findings()
                rows = [r for r in categories if r["bytes"] > 0]
                labels = [r["category"] if r["source"] == "last_session" else f"{r['category']} ({r['source']})" for r in rows]
                names = list(dict.fromkeys(labels))
                cat_source.data = {
                    "category": labels,
                    "mb": [r["bytes"] / plots.MB for r in rows],
                    "bytes": [r["bytes"] for r in rows],
                    "source": [r["source"] for r in rows],
                }
                cats.y_range.factors = names
                leak_source.data = _leak_points(leaks)  # type: ignore[assignment]
                leak_rows.data = _table_data(leak_rows, leaks)  # type: ignore[assignment]
                rec_rows.data = _table_data(rec_rows, recs)  # type: ignore[assignment]

        update()
        doc.add_periodic_callback(update, self.update_ms)
        with self._docs_lock:
            self._docs.add(doc)

        def destroyed(session_context: Any) -> None:
            with self._docs_lock:
                self._docs.discard(doc)

        doc.on_session_destroyed(destroyed)


def _header_html(m: dict[str, Any], sessions: int) -> str:
    from ..units import format_bytes

    level = str(m.get("pressure_level", "Low"))
    color = _PRESSURE_COLORS.get(level, "#444")

    def card(title: str, value: str, extra: str = "") -> str:
        return (
            "<div style='flex:1 1 150px;min-width:140px;border:1px solid #ddd;border-radius:6px;padding:6px 10px'>"
            f"<div style='font-size:11px;color:#666'>{title}</div><div style='font-size:18px;{extra}'>{value}</div></div>"
        )

    def size(key: str) -> str:
        value = m.get(key)
        return "–" if value is None else format_bytes(int(value))

    cards = [
        card("current (RSS)", size("current_bytes")),
        card("peak", size("peak_bytes")),
        card("limit", size("limit_bytes") + f" <span style='font-size:11px'>({m.get('limit_source', '')})</span>"),
        card("pressure", f"{level} · {100 * float(m.get('usage_ratio') or 0):.0f}%", f"color:{color};font-weight:bold"),
        card("allocation rate", f"{float(m.get('alloc_bytes_s') or 0) / 1e6:,.1f} MB/s"),
        card("deallocation rate", f"{float(m.get('dealloc_bytes_s') or 0) / 1e6:,.1f} MB/s"),
        card("traced", size("traced_bytes")),
        card("sessions", f"{m.get('active_sessions', 0)} running · {m.get('sessions_finished', 0)} done"),
    ]
    return (
        "<div style='display:flex;flex-wrap:wrap;gap:6px;font-family:sans-serif'>"
        + "".join(cards)
        + f"</div><div style='font-size:10px;color:#888;margin-top:2px'>{sessions} page(s) open</div>"
    )


def _leak_points(leaks: list[dict[str, Any]]) -> dict[str, list[Any]]:
    points: dict[str, list[Any]] = {"t": [], "mb": [], "bytes": [], "label": [], "impact": []}
    for row in leaks:
        size = _first(row, ("size_bytes", "bytes", "leaked_bytes", "retained_bytes", "size"), 0)
        when = _first(row, ("last_seen", "time", "first_seen", "timestamp"), time.time())
        try:
            t = float(when) * 1000.0 if isinstance(when, (int, float)) else datetime.fromisoformat(str(when)).timestamp() * 1000.0
            size = int(size)
        except (TypeError, ValueError):
            continue
        points["t"].append(t)
        points["mb"].append(size / 1e6)
        points["bytes"].append(size)
        points["label"].append(str(_first(row, ("holder", "location", "description", "name"), "")))
        points["impact"].append(str(_first(row, ("impact", "severity"), "")))
    return points


def _table_data(source: Any, rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    columns = list(source.data)
    aliases = {
        "holder": ("holder", "location", "name"),
        "size_bytes": ("size_bytes", "bytes", "leaked_bytes", "retained_bytes", "size"),
        "savings_bytes": ("savings_bytes", "estimated_savings", "savings"),
        "description": ("description", "message", "title"),
        "action": ("action", "code", "fix"),
    }
    return {c: ["" if (v := _first(r, aliases.get(c, (c,)))) is None else str(v) for r in rows] for c in columns}


def _access_log(handler: Any) -> None:
    """Requests go to the ``cgmem_nb.outputs.dashboard`` logger at DEBUG (server errors at
    ERROR), not to tornado's access log: inside a kernel, a refused request would
    otherwise print a warning into whatever cell is running."""
    status = handler.get_status()
    request = handler.request
    log.log(
        logging.ERROR if status >= 500 else logging.DEBUG,
        "%d %s %s (%s) %.2fms", status, request.method, request.path, request.remote_ip, 1000.0 * request.request_time(),
    )


def _bind(host: str, port: int) -> list[socket.socket]:
    from tornado import netutil

    sockets = netutil.bind_sockets(port, address=host)
    if len({s.getsockname()[1] for s in sockets}) != 1:  # pragma: no cover - dual-stack oddity
        for s in sockets:
            s.close()
        raise OSError(f"binding {host}:{port} gave several ports")
    return sockets


def _token_ok(request: Any, token: str) -> tuple[bool, bool]:
    """(accepted, came from the query string) for one request."""
    given = request.query_arguments.get("token")
    if given and hmac.compare_digest(given[-1].decode("utf-8", "replace"), token):
        return True, True
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("token", "bearer") and hmac.compare_digest(value.strip(), token):
        return True, False
    cookie = request.cookies.get(TOKEN_COOKIE)
    if cookie is not None and hmac.compare_digest(cookie.value, token):
        return True, False
    return False, False


_APP_CLASS: Any = None


def _app_class() -> Any:
    """``BokehTornado`` with a token check in front of every handler (HTTP and WebSocket)."""
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS
    from bokeh.server.tornado import BokehTornado
    from tornado.web import ErrorHandler, OutputTransform

    class _Guarded(BokehTornado):
        def __init__(self, *args: Any, token: str | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cgmem_token = token
            if token is not None:
                self.add_transform(lambda request: _CookieTransform(request, token))  # type: ignore[arg-type]

        def find_handler(self, request: Any, **kwargs: Any) -> Any:
            if self.cgmem_token is not None and not _token_ok(request, self.cgmem_token)[0]:
                return self.get_handler_delegate(request, ErrorHandler, {"status_code": 401})
            return super().find_handler(request, **kwargs)

    class _CookieTransform(OutputTransform):
        def __init__(self, request: Any, token: str) -> None:
            super().__init__(request)
            self._set = _token_ok(request, token)[1]
            self._token = token

        def transform_first_chunk(self, status_code: int, headers: Any, chunk: bytes, finishing: bool) -> tuple[int, Any, bytes]:
            if self._set:
                headers.add("Set-Cookie", f"{TOKEN_COOKIE}={self._token}; Path=/; HttpOnly; SameSite=Strict")
            return status_code, headers, chunk

    _APP_CLASS = _Guarded
    return _APP_CLASS


def _handlers(dash: MemoryDashboard) -> list[tuple[str, Any, dict[str, Any]]]:
    """The plain tornado handlers: ``/metrics`` and ``/api/...`` (GET only, read-only)."""
    import json

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
            self.finish(json.dumps(data, allow_nan=False, default=json_value))

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
            self.finish(export.frame_to_csv_text(tables[name]))

    return [
        (r"/metrics", Metrics, {}),
        (r"/api/metrics\.json", MetricsJSON, {}),
        (r"/api/export\.json", ExportJSON, {}),
        (r"/api/export\.csv", ExportCSV, {}),
    ]
