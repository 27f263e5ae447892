"""The dashboard's HTTP server: connections are capped and incomplete requests time out.

The server lives in the kernel's process, which has a limited number of file
descriptors (often 1,024) that the kernel itself needs for its sockets. A
client that opens connections and never finishes its request headers
(*slowloris*) would otherwise hold one descriptor each for an hour (tornado's
default). Here:

* a request's headers must arrive within ``request_timeout`` seconds (and an
  idle keep-alive connection is closed after as long);
* at most ``max_connections`` connections (WebSockets included) are open at
  once; a connection beyond that is closed as soon as it is accepted, so it
  holds its descriptor for microseconds;
* headers are limited to 64 KiB and bodies to 64 KiB (the API is GET only).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

__all__ = ["MAX_CONNECTIONS", "REQUEST_TIMEOUT", "limited_server"]

log = logging.getLogger(__package__)

#: Default cap on open connections.
MAX_CONNECTIONS = 128
#: Default seconds a request's headers (or an idle keep-alive connection) may take.
REQUEST_TIMEOUT = 10.0
_MAX_HEADER = 64 * 1024
_MAX_BODY = 64 * 1024


def limited_server(app: Any, *, max_connections: int = MAX_CONNECTIONS, request_timeout: float = REQUEST_TIMEOUT) -> Any:
    """A tornado ``HTTPServer`` for ``app`` with the limits above."""
    from tornado.httpserver import HTTPServer

    class _Limited(HTTPServer):
        def handle_stream(self, stream: Any, address: tuple[Any, ...]) -> None:
            streams: weakref.WeakSet[Any] = self.__dict__.setdefault("_cgmem_streams", weakref.WeakSet())
            open_now = sum(1 for s in list(streams) if not s.closed())
            if open_now >= max_connections:
                self.__dict__["_cgmem_refused"] = self.__dict__.get("_cgmem_refused", 0) + 1
                log.debug("cgmem_nb dashboard: %d connections open; refused one from %s", open_now, address)
                stream.close()
                return
            streams.add(stream)
            super().handle_stream(stream, address)

    return _Limited(
        app,
        xheaders=False,
        idle_connection_timeout=request_timeout,
        body_timeout=request_timeout,
        max_header_size=_MAX_HEADER,
        max_body_size=_MAX_BODY,
    )
