"""The dashboard's server over real HTTP and WebSocket connections on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket
import urllib.error
import urllib.request

import pandas as pd
import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig, export
from cgmem_nb.outputs.dashboard import DashboardError, MemoryDashboard

pytestmark = pytest.mark.integration

MB = 1000**2


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@pytest.fixture
def profiler() -> MemoryProfiler:
    prof = MemoryProfiler(ProfilerConfig(memory_limit_bytes=4000 * MB))
    prof.record_allocation(7 * MB, "Cache")
    gone = prof.record_allocation(2 * MB, "Vector")
    prof.record_deallocation(gone)
    with prof.session("http-test"):
        kept = [bytes(MB) for _ in range(3)]  # noqa: F841
    return prof


def base(d: MemoryDashboard) -> str:
    return f"http://127.0.0.1:{d.port}"


def test_metrics_endpoint_parses_and_reports_the_profiler(dash: MemoryDashboard) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    status, body, headers = get(base(dash) + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body.decode())
        for s in fam.samples
    }
    assert samples[("cgmem_memory_limit_bytes", ())] == 4000 * MB
    assert samples[("cgmem_allocations_total", ())] == 2 and samples[("cgmem_deallocations_total", ())] == 1
    assert samples[("cgmem_sessions_total", ())] == 1
    assert samples[("cgmem_category_bytes", (("category", "Cache"), ("source", "tracked")))] == 7 * MB
    assert samples[("cgmem_pressure_level", ())] == 0  # a few hundred MB against 4 GB
    assert samples[("cgmem_leaks_detected_total", ())] == 0
    assert abs(samples[("cgmem_memory_current_bytes", ())] - dash.profiler.get_current_usage()) < 200 * MB


def test_metrics_json_matches_the_profiler(dash: MemoryDashboard) -> None:
    status, body, _ = get(base(dash) + "/api/metrics.json")
    data = json.loads(body)
    assert status == 200
    assert data["limit_bytes"] == 4000 * MB and data["tracked_bytes"] == 7 * MB
    assert data["pressure_level"] == "Low" and data["sessions_finished"] == 1


STABLE = ("sessions", "allocations", "category_bytes")  # tables that do not move with the clock


def test_json_export_equals_the_in_memory_frames(dash: MemoryDashboard) -> None:
    status, body, _ = get(base(dash) + "/api/export.json")
    assert status == 200
    served = export.tables_from_json(body.decode())
    expected = export.profiler_tables(dash.profiler)
    assert set(served) == set(expected)
    for name in STABLE:
        pd.testing.assert_frame_equal(served[name], expected[name], check_exact=True)
    assert json.loads(body)["results"][0] == dash.profiler.results[0].to_dict()


def test_csv_export_equals_the_in_memory_frames_and_the_file_export(dash: MemoryDashboard, tmp_path: object) -> None:
    expected = export.profiler_tables(dash.profiler)
    dash.profiler.export_csv(tmp_path)  # type: ignore[arg-type]
    files = export.read_csv_tables(tmp_path)  # type: ignore[arg-type]
    for name in STABLE:
        status, body, headers = get(base(dash) + f"/api/export.csv?table={name}")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        dtypes = {c: str(t) for c, t in expected[name].dtypes.items()}
        frame = pd.read_csv(io.BytesIO(body), dtype=dtypes, **export.read_csv_kwargs()).astype(dtypes)
        pd.testing.assert_frame_equal(frame, expected[name], check_exact=True)
        pd.testing.assert_frame_equal(frame, files[name], check_exact=True)


def test_csv_export_names_the_tables_on_a_bad_request(dash: MemoryDashboard) -> None:
    status, body, _ = get(base(dash) + "/api/export.csv?table=nope")
    assert status == 404
    status, _, _ = get(base(dash) + "/api/export.csv")
    assert status == 400


def test_endpoints_do_not_accept_writes(dash: MemoryDashboard) -> None:
    request = urllib.request.Request(base(dash) + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405


def test_port_zero_picks_a_port_a_used_port_is_a_clear_error_and_stop_frees_it(profiler: MemoryProfiler) -> None:
    first = MemoryDashboard(profiler)
    url = first.start_server(port=0, quiet=True)
    port = first.port
    assert port and url == f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(DashboardError, match=f"127.0.0.1:{port}.*in use"):
            MemoryDashboard(profiler).start_server(port=port, quiet=True)
        with pytest.raises(DashboardError, match="already running"):
            first.start_server(port=0, quiet=True)
    finally:
        first.stop()
    assert first.port is None and first.url is None
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))
    again = MemoryDashboard(profiler)
    try:
        assert again.start_server(port=port, quiet=True) == url
    finally:
        again.stop()


def test_non_loopback_bind_requires_the_token_on_every_request(profiler: MemoryProfiler, capsys: pytest.CaptureFixture[str]) -> None:
    d = MemoryDashboard(profiler)
    url = d.start_server(port=0, host="0.0.0.0")  # served to the network; we connect only via loopback
    try:
        token = d.token
        assert token and f"?token={token}" in url and token in capsys.readouterr().out
        b = base(d)
        for path in ("/", "/metrics", "/api/metrics.json", "/api/export.json", "/api/export.csv?table=sessions", "/static/js/bokeh.min.js"):
            assert get(b + path)[0] == 401, path
            assert get(b + path + ("&" if "?" in path else "?") + "token=wrong-token")[0] == 401, path
        assert get(b + "/metrics?token=" + token)[0] == 200
        assert get(b + "/metrics", {"Authorization": f"Bearer {token}"})[0] == 200
        status, _, headers = get(b + "/?token=" + token)
        assert status == 200 and "cgmem_dashboard_token=" in headers.get("Set-Cookie", "")
        assert get(b + "/api/export.json", {"Cookie": f"cgmem_dashboard_token={token}"})[0] == 200
        assert asyncio.run(_ws_status(d, origin=f"http://127.0.0.1:{d.port}", token=None)) == 401
    finally:
        d.stop()


def test_a_token_given_on_loopback_is_enforced(profiler: MemoryProfiler) -> None:
    d = MemoryDashboard(profiler)
    d.start_server(port=0, token="s3cret-token", quiet=True)
    try:
        assert get(base(d) + "/metrics")[0] == 401
        assert get(base(d) + "/metrics?token=s3cret-token")[0] == 200
    finally:
        d.stop()


async def _ws_status(d: MemoryDashboard, *, origin: str, token: str | None) -> int:
    """Open the Bokeh WebSocket with an Origin header; 101 on success, else the HTTP status."""
    from tornado.httpclient import HTTPClientError, HTTPRequest
    from tornado.websocket import websocket_connect

    suffix = f"?token={token}" if token else ""
    status, page, _ = get(base(d) + "/" + suffix)
    match = re.search(r'"token":\s*"([^"]+)"', page.decode()) if status == 200 else None
    bokeh_token = match.group(1) if match else "none"
    request = HTTPRequest(f"ws://127.0.0.1:{d.port}/ws{suffix}", headers={"Origin": origin})
    try:
        conn = await websocket_connect(request, subprotocols=["bokeh", bokeh_token])
    except HTTPClientError as exc:
        return exc.code
    first = await asyncio.wait_for(conn.read_message(), 10)  # the server's ACK
    conn.close()
    return 101 if first is not None else 0


def test_websocket_from_another_origin_is_refused(dash: MemoryDashboard) -> None:
    port = dash.port
    assert asyncio.run(_ws_status(dash, origin=f"http://127.0.0.1:{port}", token=None)) == 101
    assert asyncio.run(_ws_status(dash, origin=f"http://localhost:{port}", token=None)) == 101
    assert asyncio.run(_ws_status(dash, origin="http://evil.example", token=None)) == 403
    assert asyncio.run(_ws_status(dash, origin=f"http://127.0.0.1:{port + 1}", token=None)) == 403
