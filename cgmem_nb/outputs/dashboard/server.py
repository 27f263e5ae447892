"""``MemoryDashboard``: a Bokeh server in the kernel, its life cycle and its data.

What runs where:

* **Data**: one :class:`~cgmem_nb.outputs.feed.LiveFeed` (the same feed the live
  panel reads) shared by every page, plus a poll of ``detect_leaks()`` /
  ``generate_recommendations()`` every ``analysis_interval`` seconds whose
  findings go into the feed.
* **Server**: a thread of its own with a fresh asyncio loop, running Bokeh's
  ``BokehTornado`` application and a tornado ``HTTPServer`` (never
  ``run_until_shutdown()``, which wants the main thread). The kernel's own loop is
  untouched, so the page keeps updating while cells run.
* **Pages** (:mod:`~cgmem_nb.outputs.dashboard.page`), the **HTTP API**
  (:mod:`~cgmem_nb.outputs.dashboard.api`) and the **token and origin checks**
  (:mod:`~cgmem_nb.outputs.dashboard.auth`) have modules of their own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Sequence
from urllib.parse import quote

from ...errors import CgmemError
from .. import export
from ..feed import LiveFeed
from . import api, auth, connections, page

if TYPE_CHECKING:
    from ...session.profiler import MemoryProfiler

__all__ = ["DashboardError", "MemoryDashboard"]

log = logging.getLogger(__package__)  # "cgmem_nb.outputs.dashboard": one logger for the package


class DashboardError(CgmemError, RuntimeError):
    """The dashboard could not start or was used in a way it does not support."""


def _bind(host: str, port: int) -> list[socket.socket]:
    from tornado import netutil

    sockets = netutil.bind_sockets(port, address=host)
    if len({s.getsockname()[1] for s in sockets}) != 1:  # pragma: no cover - dual-stack oddity
        for s in sockets:
            s.close()
        raise OSError(f"binding {host}:{port} gave several ports")
    return sockets


class MemoryDashboard:
    """A live web dashboard of a profiler, served from a background thread of the kernel.

    >>> dash = MemoryDashboard()
    >>> url = dash.start_server(port=0)      # port 0 picks a free port
    >>> dash.stop()

    Args:
        profiler: the profiler to show (default: the process-wide ``MEMORY_PROFILER``).
        interval: seconds between samples (the monitor ticks at the smallest interval any
            subscriber asks for).
        update_ms: milliseconds between page updates (each open page).
        history: samples kept (and shown) per page.
        analysis_interval: seconds between polls of ``detect_leaks()`` /
            ``generate_recommendations()``.
        unused_session_lifetime_ms: how long a closed page's document is kept.
        max_connections: most connections (WebSockets included) open at once; more are
            closed as soon as they are accepted.
        request_timeout: seconds a request's headers (or an idle keep-alive connection)
            may take before the connection is closed.
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
        max_connections: int = connections.MAX_CONNECTIONS,
        request_timeout: float = connections.REQUEST_TIMEOUT,
    ) -> None:
        if profiler is None:
            from ...session.profiler import MEMORY_PROFILER

            profiler = MEMORY_PROFILER
        if not 0.01 <= interval <= 60:
            raise DashboardError(f"interval={interval!r} is not accepted: give seconds from 0.01 to 60")
        if not 50 <= update_ms <= 60_000:
            raise DashboardError(f"update_ms={update_ms!r} is not accepted: give milliseconds from 50 to 60000")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or not 1 <= max_connections <= 10_000:
            raise DashboardError(f"max_connections={max_connections!r} is not accepted: give a whole number from 1 to 10000")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) or not 0.1 <= request_timeout <= 3600:
            raise DashboardError(f"request_timeout={request_timeout!r} is not accepted: give seconds from 0.1 to 3600")
        self.max_connections = max_connections
        self.request_timeout = float(request_timeout)
        self.profiler = profiler
        self.interval = interval
        self.update_ms = update_ms
        self.history = history
        self.analysis_interval = analysis_interval
        self.unused_session_lifetime_ms = unused_session_lifetime_ms
        #: The live feed the pages read (None while stopped).
        self.feed: LiveFeed | None = None
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
        """Mark a boundary on the timeline by hand (cells are marked by the IPython extension)."""
        if self.feed is not None:
            self.feed.mark(label, kind)

    # -- start / stop -----------------------------------------------------------------------------
    def start_server(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
        *,
        allow_origins: Sequence[str] = (),
        allow_hosts: Sequence[str] = (),
        quiet: bool = False,
    ) -> str:
        """Start serving and return the URL.

        Args:
            port: the port (default ``config.dashboard_port``, 8080); 0 picks a free one.
            host: the address to bind. Anything but loopback requires a token.
            token: the token to require; generated (and printed) for a non-loopback
                host when not given. On loopback, a given token is enforced too.
            allow_origins: extra ``host:port`` WebSocket origins (e.g. for a proxy).
            allow_hosts: extra names the ``Host`` header may carry, e.g. the name of a
                reverse proxy in front of the dashboard (``["dash.example.com"]``); each
                is also accepted as a WebSocket origin. See ``docs/security.md``.
            quiet: do not print the URL.

        Raises:
            DashboardError: already running, the port is in use, or bad arguments.
            ConfigError: the profiler's ``real_time_monitoring`` is off.
        """
        with self._start_lock:
            if self.running:
                raise DashboardError(f"the dashboard is already running at {self.url}; call stop() first")
            if port is None:
                port = self.profiler.config.dashboard_port
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise DashboardError(f"port={port!r} is not accepted: give a port from 0 to 65535 (0 picks a free one)")
            if not isinstance(host, str) or not host:
                raise DashboardError(f"host={host!r} is not accepted: give an address such as '127.0.0.1'")
            generated = False
            problem = auth.token_problem(token) if token is not None else None
            if problem is not None:
                raise DashboardError(f"this token is not accepted: {problem}; give another, or None to generate one")
            if isinstance(allow_hosts, str) or not all(isinstance(h, str) and h and h.isprintable() and " " not in h for h in allow_hosts):
                raise DashboardError(
                    f"allow_hosts={allow_hosts!r} is not accepted: give a list of host names, e.g. ['dash.example.com']"
                )
            if token is None and not auth.is_loopback(host):
                token, generated = secrets.token_urlsafe(24), True
            feed = LiveFeed(self.profiler, history=self.history, metrics_interval=0.5, interval=self.interval).start()
            try:
                sockets = _bind(host, port)
            except OSError as exc:
                feed.stop()
                raise DashboardError(
                    f"cannot serve the dashboard on {host}:{port}: {exc.strerror or exc}. "
                    + ("Another server (or another dashboard) uses this port; " if port else "")
                    + "choose another port, or port=0 to pick a free one"
                ) from None
            self.feed = feed
            self._host, self._port, self._token = host, sockets[0].getsockname()[1], token
            started = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._serve,
                args=(
                    sockets, auth.origins(host, self._port, [*allow_origins, *allow_hosts]),
                    auth.HostPolicy(host, allow_hosts), started, failure,
                ),
                name=f"cgmem-dashboard-{self._port}",
                daemon=True,
            )
            self._thread.start()
            if not started.wait(30) or failure:
                feed.stop()
                self.feed = None
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
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.stop()
        with self._docs_lock:
            self._docs.clear()
        self._port = None

    def __enter__(self) -> MemoryDashboard:
        if not self.running:
            self.start_server()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<MemoryDashboard {self.url or 'stopped'}>"

    # -- the server thread ---------------------------------------------------------------------
    def _serve(
        self,
        sockets: list[socket.socket],
        origins: list[str],
        hosts: auth.HostPolicy,
        started: threading.Event,
        failure: list[BaseException],
    ) -> None:
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import BaseServer
        from tornado.ioloop import IOLoop, PeriodicCallback

        asyncio.set_event_loop(asyncio.new_event_loop())
        io_loop = IOLoop.current()
        server = None
        try:
            tornado_app = auth.app_class()(
                {"/": Application(FunctionHandler(self._make_document))},
                extra_websocket_origins=origins,
                extra_patterns=api.handlers(self),
                check_unused_sessions_milliseconds=min(17000, max(200, self.unused_session_lifetime_ms // 2)),
                unused_session_lifetime_milliseconds=self.unused_session_lifetime_ms,
                token=self._token,
                hosts=hosts,
                log_function=api.access_log,
            )
            http = connections.limited_server(
                tornado_app, max_connections=self.max_connections, request_timeout=self.request_timeout
            )
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

    def _make_document(self, doc: Any) -> None:
        feed = self.feed
        if feed is None:
            return
        page.build_page(doc, feed, rollover=self.history, update_ms=self.update_ms, pages=lambda: self.open_sessions)
        with self._docs_lock:
            self._docs.add(doc)

        def destroyed(session_context: Any) -> None:
            with self._docs_lock:
                self._docs.discard(doc)

        doc.on_session_destroyed(destroyed)

    def _poll_analysis(self) -> None:
        if self.feed is not None and self._loop is not None:
            self._loop.run_in_executor(None, self.poll_analysis)

    def poll_analysis(self) -> None:
        """Ask the profiler for its leaks and recommendations now and put them in the feed."""
        feed = self.feed
        if feed is None:
            return
        try:
            # A read: the dashboard never takes observations or moves the leak history.
            leaks = self.profiler.detect_leaks(observe=False)
            recs = self.profiler.generate_recommendations(observe=False)
        except Exception:
            log.exception("cgmem_nb dashboard: the analysis poll failed")
            return
        feed.set_findings(leaks, recs)

    # -- HTTP payloads (called on an executor thread) ------------------------------------------------------
    def prometheus_text(self) -> str:
        """``/metrics``: Prometheus text (recomputed at most 4 times a second)."""
        at, text = self._prom_cache
        now = time.monotonic()
        if now - at > 0.25 or not text:
            feed = self.feed
            leaks = feed.leaks_seen if feed is not None else 0  # distinct leaks the feed saw
            text = export.prometheus(self.profiler, leaks_detected=leaks)
            self._prom_cache = (now, text)
        return text

    def metrics_json(self) -> dict[str, Any]:
        """``/api/metrics.json``: current figures, rates and pressure."""
        values = export.metrics_dict(self.profiler)
        feed = self.feed
        if feed is not None:
            f = feed.figures
            values["alloc_bytes_s"] = f.alloc_bytes_s
            values["dealloc_bytes_s"] = f.dealloc_bytes_s
            values["samples"] = len(feed.samples)
        values["open_sessions"] = self.open_sessions
        return values
