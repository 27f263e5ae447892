"""Who may talk to the dashboard: the ``Host`` allow-list, the token check, its cookie and the WebSocket origins.

Every request (pages, static files, ``/ws`` and the API) passes two checks
before any handler runs:

1. **Host** (DNS rebinding): the ``Host`` header must name this server: a loopback
   name or address (``localhost``, ``127.0.0.1``, ``::1``), the address bound,
   any IP address when bound to a wildcard address (an IP address cannot be
   rebound), or a name given with ``allow_hosts`` (a proxy's name). Anything else
   is a **403**: a web page whose name an attacker points at 127.0.0.1 cannot read
   the dashboard, over HTTP or WebSocket.
2. **Token**, when one is required (any non-loopback bind, or a token given):
   exactly one ``?token=``, one ``Authorization: Token ...`` / ``Bearer ...``
   header or one :data:`TOKEN_COOKIE` cookie (set, percent-encoded, HttpOnly and
   SameSite=Strict, when the page is opened with ``?token=``) must carry it,
   compared in constant time. Anything else is a **401**; a request that carries
   two values in one place (``?token=a&token=b``) is refused too.

Tokens are 8 to 256 printable ASCII characters without spaces (:func:`token_problem`).
The WebSocket origin allow-list is exactly ``127.0.0.1:PORT``, ``localhost:PORT``,
``HOST:PORT`` for the host bound, and the ``allow_hosts`` names.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Iterable
from urllib.parse import quote, unquote

__all__ = [
    "TOKEN_COOKIE",
    "HostPolicy",
    "app_class",
    "cookie_header",
    "is_loopback",
    "origins",
    "token_ok",
    "token_problem",
]

#: Cookie that carries the token after the page was opened with ``?token=``.
TOKEN_COOKIE = "cgmem_dashboard_token"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_ANY = ("0.0.0.0", "::", "")
#: Longest token accepted.
MAX_TOKEN = 256


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_problem(token: object) -> str | None:
    """Why ``token`` cannot be a dashboard token, or None when it can."""
    if not isinstance(token, str):
        return f"token must be a string, not {type(token).__name__}"
    if not 8 <= len(token) <= MAX_TOKEN:
        return f"token must have 8 to {MAX_TOKEN} characters (it has {len(token)})"
    bad = sorted({c for c in token if not "!" <= c <= "~"})
    if bad:
        return f"token may hold only printable ASCII characters without spaces; it holds {''.join(bad)!r}"
    return None


def _split_host(value: str) -> str:
    """The host part of a ``Host`` header (``[::1]:8080`` -> ``::1``, ``a.b:80`` -> ``a.b``), lower case."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value  # a bare IPv6 address or a name without a port


class HostPolicy:
    """The ``Host`` names a dashboard bound to ``bound`` answers to."""

    def __init__(self, bound: str, extra: Iterable[str] = ()) -> None:
        names = set(_LOOPBACK_NAMES)
        if bound not in _ANY:
            names.add(_split_host(bound))
        self.extra = tuple(sorted({_split_host(name) for name in extra if name}))
        names.update(self.extra)
        self.names = frozenset(names)
        #: A wildcard bind answers to any IP address of the machine (rebinding needs a name).
        self.any_ip = bound in _ANY

    def allows(self, host_header: str) -> bool:
        """True when a request with this ``Host`` header may be served."""
        host = _split_host(host_header)
        if host in self.names:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return address.is_loopback or self.any_ip


def origins(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The WebSocket origins accepted for a server on ``host:port`` (plus ``extra``)."""
    allowed = {f"127.0.0.1:{port}", f"localhost:{port}"}
    if host not in _ANY:
        allowed.add(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    allowed.update(extra)
    return sorted(allowed)


def _same(given: bytes, token: bytes) -> bool:
    return hmac.compare_digest(given, token)


def token_ok(request: Any, token: str) -> tuple[bool, bool]:
    """(accepted, came from the query string) for one request.

    Each place (query, ``Authorization`` header, cookie) may carry at most one value;
    a request that carries two in one place is refused whatever they are.
    """
    expected = token.encode("ascii")
    queries = request.query_arguments.get("token", [])
    auths = request.headers.get_list("Authorization")
    cookies = [
        part.split("=", 1)[1].strip()
        for header in request.headers.get_list("Cookie")
        for part in header.split(";")
        if "=" in part and part.split("=", 1)[0].strip() == TOKEN_COOKIE
    ]
    if len(queries) > 1 or len(auths) > 1 or len(cookies) > 1:
        return False, False
    if queries and _same(queries[0], expected):
        return True, True
    if auths:
        scheme, _, value = auths[0].partition(" ")
        if scheme.lower() in ("token", "bearer") and _same(value.strip().encode("utf-8", "replace"), expected):
            return True, False
    if cookies and _same(unquote(cookies[0]).encode("utf-8", "replace"), expected):
        return True, False
    return False, False


def cookie_header(token: str) -> str:
    """The ``Set-Cookie`` value that carries ``token`` (percent-encoded: no attribute can be injected)."""
    return f"{TOKEN_COOKIE}={quote(token, safe='')}; Path=/; HttpOnly; SameSite=Strict"


_APP_CLASS: Any = None


def app_class() -> Any:
    """``BokehTornado`` with the Host and token checks in front of every handler (HTTP and WebSocket)."""
    global _APP_CLASS
    if _APP_CLASS is not None:
        return _APP_CLASS
    from bokeh.server.tornado import BokehTornado
    from tornado.web import ErrorHandler, OutputTransform

    class _Guarded(BokehTornado):
        def __init__(self, *args: Any, token: str | None = None, hosts: HostPolicy | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.cgmem_token = token
            self.cgmem_hosts = hosts or HostPolicy("127.0.0.1")
            if token is not None:
                self.add_transform(lambda request: _CookieTransform(request, token))  # type: ignore[arg-type]

        def find_handler(self, request: Any, **kwargs: Any) -> Any:
            if not self.cgmem_hosts.allows(request.host):
                return self.get_handler_delegate(request, ErrorHandler, {"status_code": 403})
            if self.cgmem_token is not None and not token_ok(request, self.cgmem_token)[0]:
                return self.get_handler_delegate(request, ErrorHandler, {"status_code": 401})
            return super().find_handler(request, **kwargs)

    class _CookieTransform(OutputTransform):
        def __init__(self, request: Any, token: str) -> None:
            super().__init__(request)
            self._set = token_ok(request, token)[1]
            self._token = token

        def transform_first_chunk(self, status_code: int, headers: Any, chunk: bytes, finishing: bool) -> tuple[int, Any, bytes]:
            if self._set:
                headers.add("Set-Cookie", cookie_header(self._token))
            return status_code, headers, chunk

    _APP_CLASS = _Guarded
    return _APP_CLASS
