"""What an adversarial sweep broke in the dashboard, reproduced over real loopback connections:
DNS rebinding (Host), slowloris (half-open connections), reads that changed state, tokens and cookies."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig
from cgmem_nb.outputs.dashboard import DashboardError, MemoryDashboard
from cgmem_nb.session.holders import OBSERVATIONS

pytestmark = pytest.mark.integration
MB = 1000**2


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def raw_status(port: int, request: bytes) -> int:
    """The status of one hand-written HTTP request (headers exactly as given)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return 0  # connection dropped
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.fixture
def profiler() -> MemoryProfiler:
    return MemoryProfiler(ProfilerConfig(memory_limit_bytes=4000 * MB))


# -- DNS rebinding ----------------------------------------------------------------------------


def test_a_foreign_host_header_is_refused(dash: MemoryDashboard) -> None:
    port = dash.port
    assert port is not None
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example:80"):
        for path in ("/api/export.json", "/metrics", "/", "/static/js/bokeh.min.js"):
            request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
            assert raw_status(port, request) == 403, (host, path)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", "127.0.0.2"):
        request = f"GET /api/metrics.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
        assert raw_status(port, request) == 200, host


async def _ws_status(port: int, host: str, origin: str) -> int:
    """A WebSocket handshake with these Host and Origin headers: 101, or the HTTP status."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    request = HTTPRequest(f"ws://127.0.0.1:{port}/ws", headers={"Host": host, "Origin": origin})
    try:
        conn = await websocket_connect(request, subprotocols=["bokeh", "none"])
    except HTTPClientError as exc:
        return exc.code
    conn.close()
    return 101


def test_a_rebound_websocket_handshake_is_refused(dash: MemoryDashboard) -> None:
    port = dash.port
    assert port is not None
    evil = f"evil.example:{port}"
    assert asyncio.run(_ws_status(port, evil, f"http://{evil}")) == 403


def test_a_proxy_name_can_be_allowed(profiler: MemoryProfiler) -> None:
    d = MemoryDashboard(profiler)
    d.start_server(port=0, quiet=True, allow_hosts=["dash.example.com"])
    try:
        port = d.port
        assert port is not None
        ok = b"GET /api/metrics.json HTTP/1.1\r\nHost: dash.example.com\r\nConnection: close\r\n\r\n"
        assert raw_status(port, ok) == 200
        bad = b"GET /api/metrics.json HTTP/1.1\r\nHost: other.example.com\r\nConnection: close\r\n\r\n"
        assert raw_status(port, bad) == 403
    finally:
        d.stop()
    with pytest.raises(DashboardError, match="allow_hosts"):
        MemoryDashboard(profiler).start_server(port=0, quiet=True, allow_hosts="dash.example.com")  # type: ignore[arg-type]


# -- reads never change state ------------------------------------------------------------------


def test_reading_the_api_changes_no_state(dash: MemoryDashboard) -> None:
    prof = dash.profiler
    blobs = []
    for _ in range(4):  # a growing leak in the manual records: observed by the user's own calls
        blobs.append(prof.record_allocation(8 * MB, "Cache"))
        prof.detect_leaks()
    before_obs = len(OBSERVATIONS.items())
    before = [(k.leak_id, k.status, k.size, k.observations) for k in prof.detect_leaks(observe=False)]
    assert any(status == "growing" for _, status, _, _ in before)
    base = f"http://127.0.0.1:{dash.port}"
    for _ in range(30):
        for path in ("/api/export.json", "/api/export.csv?table=leaks", "/metrics", "/api/metrics.json"):
            assert get(base + path)[0] == 200
    dash.poll_analysis()  # the dashboard's own analysis poll reads too
    assert len(OBSERVATIONS.items()) == before_obs
    assert [(k.leak_id, k.status, k.size, k.observations) for k in prof.detect_leaks(observe=False)] == before


# -- tokens and cookies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "needle"),
    [("pässwörd-token", "printable ASCII"), ("abcdefgh\r\nX: y", "printable ASCII"), ("short", "8 to 256"),
     ("with space token", "printable ASCII"), ("x" * 300, "8 to 256")],
)
def test_bad_tokens_are_refused_at_start(profiler: MemoryProfiler, token: str, needle: str) -> None:
    with pytest.raises(DashboardError, match=needle):
        MemoryDashboard(profiler).start_server(port=0, token=token, quiet=True)


def test_token_values_are_checked_one_at_a_time(profiler: MemoryProfiler) -> None:
    token = "right-token-1"
    d = MemoryDashboard(profiler)
    d.start_server(port=0, token=token, quiet=True)
    try:
        port = d.port
        assert port is not None
        base = f"http://127.0.0.1:{port}/metrics"
        assert get(f"{base}?token={token}")[0] == 200
        assert get(f"{base}?token=wrong&token={token}")[0] == 401
        assert get(f"{base}?token={token}&token={token}")[0] == 401
        assert get(base, {"Authorization": f"Bearer {token}"})[0] == 200
        # A non-ASCII header is an answer (401), not a dropped connection.
        request = f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer pässwört\r\nConnection: close\r\n\r\n"
        assert raw_status(port, request.encode("latin-1")) == 401
        cookie = f"cgmem_dashboard_token={token}"
        assert get(base, {"Cookie": cookie})[0] == 200
        assert get(base, {"Cookie": f"{cookie}; cgmem_dashboard_token=wrong-token"})[0] == 401
    finally:
        d.stop()


def test_the_cookie_cannot_carry_an_injected_attribute(profiler: MemoryProfiler) -> None:
    token = "abcdefgh;Domain=evil.example"
    d = MemoryDashboard(profiler)
    url = d.start_server(port=0, token=token, quiet=True)
    try:
        status, _, headers = get(url)
        assert status == 200
        cookie = headers["Set-Cookie"]
        attributes = [part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]]
        assert sorted(attributes) == ["httponly", "path", "samesite"], cookie
        assert "samesite=strict" in cookie.lower()
        value = cookie.split(";")[0]
        assert get(f"http://127.0.0.1:{d.port}/metrics", {"Cookie": value})[0] == 200  # the cookie round-trips
    finally:
        d.stop()


# -- slowloris ------------------------------------------------------------------------------------

ATTACKER = textwrap.dedent(
    """
    import json, socket, sys, time
    port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    socks, refused = [], 0
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n")  # headers never finished
        socks.append(s)
    print(json.dumps({"opened": len(socks)}), flush=True)
    sys.stdin.readline()  # the test has looked at the server's descriptors
    deadline = time.monotonic() + hold
    closed = set()
    while time.monotonic() < deadline and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except socket.timeout:
                pass
            except OSError:
                closed.add(i)
    print(json.dumps({"closed_by_server": len(closed)}), flush=True)
    """
)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_half_open_connections_are_capped_and_time_out(profiler: MemoryProfiler) -> None:
    """300 connections that never finish their headers (bounded: loopback, a few seconds)."""
    cap, count = 64, 300
    d = MemoryDashboard(profiler, max_connections=cap, request_timeout=1.0)
    d.start_server(port=0, quiet=True)
    try:
        port = d.port
        assert port is not None
        baseline = _fds()
        attacker = subprocess.Popen(
            [sys.executable, "-c", ATTACKER, str(port), str(count), "6"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        try:
            assert attacker.stdout is not None and attacker.stdin is not None
            assert json.loads(attacker.stdout.readline())["opened"] == count
            during = _fds()
            assert during <= baseline + cap + 8, f"{during - baseline} descriptors held by {count} half-open connections"
            # The kernel side still has descriptors and answers.
            with open(os.devnull) as fh:
                assert fh.fileno() > 0
            assert profiler.get_metrics().current_usage > 0
            attacker.stdin.write("go\n")
            attacker.stdin.flush()
            closed = json.loads(attacker.stdout.readline())["closed_by_server"]
            assert closed == count  # refused at once, or timed out after request_timeout
        finally:
            attacker.kill()
            attacker.wait(10)
        deadline = time.monotonic() + 5
        while _fds() > baseline + 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _fds() <= baseline + 2, "the descriptors were not released"
        assert get(f"http://127.0.0.1:{port}/api/metrics.json")[0] == 200  # and it serves again
    finally:
        d.stop()


def test_limits_are_validated(profiler: MemoryProfiler) -> None:
    with pytest.raises(DashboardError, match="max_connections"):
        MemoryDashboard(profiler, max_connections=0)
    with pytest.raises(DashboardError, match="request_timeout"):
        MemoryDashboard(profiler, request_timeout=float("inf"))
