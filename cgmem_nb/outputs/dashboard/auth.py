"""Who may talk to the dashboard: the token check, its cookie and the WebSocket origins.

The dashboard binds 127.0.0.1 by default. Any other address needs a token
(generated when not given); with a token, every HTTP request and the WebSocket
handshake must carry it: ``?token=``, an ``Authorization: Token ...`` /
``Bearer ...`` header, or the :data:`TOKEN_COOKIE` cookie the page sets when it
was opened with ``?token=``. The WebSocket origin allow-list is exactly
``127.0.0.1:PORT``, ``localhost:PORT`` and ``HOST:PORT`` for the host bound.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any, Iterable

__all__ = ["TOKEN_COOKIE", "app_class", "is_loopback", "origins", "token_ok"]

#: Cookie that carries the token after the page was opened with ``?token=``.
TOKEN_COOKIE = "cgmem_dashboard_token"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
_ANY = ("0.0.0.0", "::", "")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origins(host: str, port: int, extra: Iterable[str] = ()) -> list[str]:
    """The WebSocket origins accepted for a server on ``host:port`` (plus ``extra``)."""
    allowed = {f"127.0.0.1:{port}", f"localhost:{port}"}
    if host not in _ANY:
        allowed.add(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    allowed.update(extra)
    return sorted(allowed)


def token_ok(request: Any, token: str) -> tuple[bool, bool]:
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


def app_class() -> Any:
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
                headers.add("Set-Cookie", f"{TOKEN_COOKIE}={self._token}; Path=/; HttpOnly; SameSite=Strict")
            return status_code, headers, chunk

    _APP_CLASS = _Guarded
    return _APP_CLASS
