"""Load: 50 concurrent /metrics clients for 10 s on loopback, no errors, bounded server memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from cgmem_nb.engine import probes
from cgmem_nb.outputs.dashboard import MemoryDashboard

pytestmark = pytest.mark.integration

CLIENTS = 50
SECONDS = 10.0
#: Most the server process may grow by under the load.
GROWTH_BOUND = 40_000_000

# The clients run in another process so that they do not share the server's GIL.
CLIENT_SCRIPT = textwrap.dedent(
    """
    import http.client, json, sys, threading, time
    port, clients, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    ok, errors, lock = [0], [], threading.Lock()
    stop_at = time.monotonic() + seconds
    def run():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            try:
                conn.request("GET", "/metrics")
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or b"cgmem_memory_current_bytes" not in body:
                    raise RuntimeError(f"status {resp.status}")
                with lock:
                    ok[0] += 1
            except Exception as exc:
                with lock:
                    errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()
    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps({"ok": ok[0], "errors": errors[:5], "error_count": len(errors)}))
    """
)


def test_fifty_metrics_clients_for_ten_seconds(dash: MemoryDashboard) -> None:
    # warm up (first request imports prometheus_client and fills caches)
    subprocess.run([sys.executable, "-c", CLIENT_SCRIPT, str(dash.port), "2", "0.5"], check=True, capture_output=True)
    rss_before = probes.rss()
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, str(dash.port), str(CLIENTS), str(SECONDS)],
        check=True, capture_output=True, text=True, timeout=SECONDS + 30,
    )
    result = json.loads(done.stdout)
    growth = probes.rss() - rss_before
    print(f"\n/metrics load: {result['ok']} responses in {SECONDS:.0f} s from {CLIENTS} clients; server RSS grew {growth} bytes")
    assert result["error_count"] == 0, result["errors"]
    assert result["ok"] >= CLIENTS  # every client got answers
    assert growth < GROWTH_BOUND, f"server grew by {growth} bytes under load (bound {GROWTH_BOUND})"
