"""%memdash in a real IPython shell: start on a free port, mark cells, stop and free the port."""

from __future__ import annotations

import socket
import urllib.request

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb.integrations import dashboard_magics

pytestmark = pytest.mark.integration


def test_memdash_starts_marks_cells_and_stops(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_line_magic("memdash", "--port 0")
    dash = dashboard_magics.DASHBOARD
    assert dash is not None and dash.running and dash.port
    port = dash.port
    try:
        assert f"http://127.0.0.1:{dash.port}/" in capsys.readouterr().out
        with urllib.request.urlopen(f"http://127.0.0.1:{dash.port}/metrics", timeout=10) as r:
            assert r.status == 200
        shell.run_cell("x = 1", store_history=True)
        feed = dash.feed
        assert feed is not None and any(m.label.startswith("In[") and m.source == "cell" for m in feed.markers)
        shell.run_line_magic("memdash", "--port 0")
        assert "already running" in capsys.readouterr().out
    finally:
        shell.run_line_magic("memdash", "--stop")
    assert not dash.running
    with socket.socket() as s:
        # the listening socket is gone (connections in TIME_WAIT remain, as for any server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def test_memdash_on_a_used_port_is_a_usage_error(shell: InteractiveShell) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"{port}.*in use"):
            shell.run_line_magic("memdash", f"--port {port}")


def test_memprofile_guard_option_is_accepted(shell: InteractiveShell) -> None:
    shell.run_cell("%%memprofile --guard -q -o r\ny = [0] * 1000", store_history=True)
    r = shell.user_ns["r"]
    assert r.summary.guard_armed is True and r.summary.guard_triggered is False


def test_memdash_token_loses_its_shell_quotes(shell: InteractiveShell) -> None:
    shell.run_line_magic("memdash", '--port 0 --token "quoted-token-1" --allow-host dash.example.com')
    dash = dashboard_magics.DASHBOARD
    try:
        assert dash is not None and dash.token == "quoted-token-1"
        request = urllib.request.Request(f"http://127.0.0.1:{dash.port}/metrics?token=quoted-token-1", headers={"Host": "dash.example.com"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
    finally:
        shell.run_line_magic("memdash", "--stop")


@pytest.mark.parametrize(
    ("line", "needle"),
    [('--token "unclosed', "No closing quotation"), ("--token pässwört1", "printable ASCII"), ("--port 99999", "99999")],
)
def test_memdash_bad_options_are_usage_errors(shell: InteractiveShell, line: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        shell.run_line_magic("memdash", line)
    dash = dashboard_magics.DASHBOARD
    assert dash is None or not dash.running
