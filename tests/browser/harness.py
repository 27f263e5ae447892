"""Drive a real JupyterLab from tests: start the server, then steer the page.

The fixtures in ``conftest.py`` build on this module; tests import the helpers
directly (``from harness import open_notebook, run_cell, ...``).

Server side: :func:`start_jupyterlab` runs ``python -m jupyterlab`` from the test
interpreter with private Jupyter/IPython directories, a kernelspec that points at
``sys.executable``, loopback only and a token, and returns a
:class:`JupyterLabServer`. Page side: the helpers use ``window.jupyterapp``
(exposed by ``--LabApp.expose_app_in_browser=True``) rather than clicking, which
is faster and does not depend on the layout.

Facts this relies on (see ``shared/FACTS.md``): the cell prompt ``[*]`` is the
reliable sign that a cell is running (the kernel status may read ``idle`` during
a long C call); messages from the page reach the kernel only after a busy cell.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Chromium to drive (Debian's package; ``playwright install`` cannot download here).
CHROMIUM = "/usr/bin/chromium"
#: Arguments Chromium needs headless, as root, offline.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Name of the kernelspec installed into the private data dir and made the default.
#: Not ``python3``: inside a venv jupyter_core searches the environment's
#: ``share/jupyter`` before ``JUPYTER_DATA_DIR``, so ipykernel's own ``python3``
#: spec would shadow a private one of the same name.
KERNEL_NAME = "cgmem-tests"
#: Lab extensions disabled in the page (the news toast would cover the notebook).
DISABLED_EXTENSIONS: tuple[str, ...] = ("@jupyterlab/apputils-extension:announcements",)

_REPO_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- server


@dataclass
class JupyterLabServer:
    """A running JupyterLab started by :func:`start_jupyterlab`."""

    #: ``http://127.0.0.1:PORT`` (no trailing slash).
    base_url: str
    #: The server token (also accepted as ``?token=`` in page URLs).
    token: str
    #: The server's ``root_dir``: notebooks written here open as ``/lab/tree/NAME``.
    root_dir: Path
    #: Folder holding the private config, data, runtime and IPython dirs and the log.
    home: Path
    #: The server process (its own process group).
    process: subprocess.Popen[bytes]
    #: File receiving the server's stdout and stderr.
    log_path: Path
    #: Environment the server (and so its kernels) runs with.
    env: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1."""
        return int(self.base_url.rsplit(":", 1)[1])

    def notebook_url(self, name: str) -> str:
        """Page URL that opens notebook ``name`` in a fresh workspace (``&reset``)."""
        return f"{self.base_url}/lab/tree/{name}?token={self.token}&reset"

    def api(self, path: str, timeout: float = 5.0) -> Any:
        """GET ``/api/<path>`` with the token and return the decoded JSON."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read().decode())

    def write_notebook(self, name: str, cells: Sequence[str | tuple[str, str]]) -> Path:
        """Write a notebook into :attr:`root_dir` and return its path.

        ``cells`` are code sources, or ``("markdown", text)`` / ``("code", source)``
        pairs. The notebook names the private kernelspec so it opens on the test
        interpreter without a kernel picker.
        """
        import nbformat as _nbformat

        nbformat: Any = _nbformat  # untyped library
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3 (tests)", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        for cell in cells:
            kind, source = ("code", cell) if isinstance(cell, str) else cell
            if kind == "markdown":
                nb.cells.append(nbformat.v4.new_markdown_cell(source))
            elif kind == "code":
                nb.cells.append(nbformat.v4.new_code_cell(source))
            else:
                raise ValueError(f"cell kind {kind!r} is not accepted: use 'code' or 'markdown'")
        if not name.endswith(".ipynb"):
            name += ".ipynb"
        path = self.root_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        return path

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the server log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _request(self, method: str, path: str, timeout: float) -> None:
        request = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout):
            pass

    def shutdown_kernels(self, timeout: float = 10.0) -> None:
        """Shut every kernel down through the REST API (best effort)."""
        try:
            kernels = self.api("kernels", timeout=timeout)
        except (urllib.error.URLError, OSError, ValueError):
            return
        for kernel in kernels:
            try:
                self._request("DELETE", f"kernels/{kernel['id']}", timeout=timeout)
            except (urllib.error.URLError, OSError):
                pass

    def stop(self, timeout: float = 15.0) -> None:
        """Stop kernels over REST, SIGINT the server, then SIGKILL its process group if needed.

        SIGINT alone does not run the server's kernel cleanup when stdin is not a
        terminal: kernels (which jupyter_client starts in their own session) then
        exit only when ipykernel notices its parent is gone, about a second later.
        """
        proc = self.process
        if proc.poll() is None:
            self.shutdown_kernels()
            try:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Kernels run in the server's process group; make sure none outlives the test session.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_home(home: Path) -> dict[str, Path]:
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "root")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    labconfig = dirs["config"] / "labconfig"
    labconfig.mkdir(exist_ok=True)
    (labconfig / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in DISABLED_EXTENSIONS}}, indent=1)
    )
    kernel_dir = dirs["data"] / "kernels" / KERNEL_NAME
    kernel_dir.mkdir(parents=True, exist_ok=True)
    (kernel_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (tests)",
                "language": "python",
                "metadata": {"debugger": False},
            },
            indent=1,
        )
    )
    return dirs


def start_jupyterlab(home: Path, startup_timeout: float = 90.0) -> JupyterLabServer:
    """Start JupyterLab under ``home`` (created) and wait until ``/api/status`` answers.

    The server runs ``sys.executable -m jupyterlab`` bound to 127.0.0.1 on a free
    port with a random token, its own ``JUPYTER_CONFIG_DIR`` / ``JUPYTER_DATA_DIR``
    / ``JUPYTER_RUNTIME_DIR`` / ``IPYTHONDIR``, ``root_dir`` ``home/root`` and the
    repository on ``PYTHONPATH`` so kernels can import ``cgmem_nb``.

    Raises:
        RuntimeError: the server exited or did not answer in time (with its log).
    """
    dirs = _prepare_home(home)
    port = free_port()
    token = secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        IPYTHONDIR=str(dirs["ipython"]),
        PYTHONPATH=os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH", "")) if p),
        PYTHONUNBUFFERED="1",
        JUPYTER_PREFER_ENV_PATH="0",  # private dirs first (see KERNEL_NAME)
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--allow-root",
        f"--ServerApp.root_dir={dirs['root']}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--MultiKernelManager.default_kernel_name={KERNEL_NAME}",
    ]
    log_path = home / "jupyterlab.log"
    log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        proc = subprocess.Popen(
            cmd, env=env, cwd=dirs["root"], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    server = JupyterLabServer(
        base_url=f"http://127.0.0.1:{port}", token=token, root_dir=dirs["root"], home=home,
        process=proc, log_path=log_path, env=env,
    )
    deadline = time.monotonic() + startup_timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode} while starting:\n{server.log_tail()}")
        try:
            server.api("status", timeout=2.0)
            return server
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"JupyterLab did not answer /api/status within {startup_timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.25)


# --------------------------------------------------------------------------- page

#: JS prelude: the current notebook panel, or throw a readable error.
_PANEL = """
const app = window.jupyterapp;
if (!app) throw new Error('window.jupyterapp is missing: start JupyterLab with --LabApp.expose_app_in_browser=True');
const panel = app.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext) throw new Error('the current widget is not a notebook');
"""


def evaluate(page: Page, script: str, arg: Any = None) -> Any:
    """Evaluate a JS expression or ``() => ...`` function on the page and return its value."""
    return page.evaluate(script, arg)


def open_notebook(page: Page, server: JupyterLabServer, name: str, timeout: float = 90.0) -> None:
    """Open notebook ``name`` (in the server's root_dir) in a fresh workspace and wait for an idle kernel."""
    if not name.endswith(".ipynb"):
        name += ".ipynb"
    page.goto(server.notebook_url(name), wait_until="domcontentloaded", timeout=timeout * 1000)
    page.wait_for_function(
        """(name) => {
            const app = window.jupyterapp;
            const w = app && app.shell && app.shell.currentWidget;
            return !!(w && w.content && w.sessionContext && w.context && w.context.path.endsWith(name)
                      && w.content.widgets.length > 0);
        }""",
        arg=name,
        timeout=timeout * 1000,
        polling=200,
    )
    wait_for_kernel_idle(page, timeout=timeout)


def kernel_status(page: Page) -> str | None:
    """The current notebook's kernel status (``"idle"``, ``"busy"``, ``"starting"`` …), or None without a kernel."""
    status = evaluate(
        page,
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return kernel ? kernel.status : null;
        }""",
    )
    return None if status is None else str(status)


def wait_for_kernel_idle(page: Page, timeout: float = 60.0) -> None:
    """Wait until the current notebook has a kernel whose status is ``idle``."""
    page.wait_for_function(
        """() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return !!kernel && kernel.status === 'idle';
        }""",
        timeout=timeout * 1000,
        polling=200,
    )


def cell_count(page: Page) -> int:
    """Number of cells in the current notebook."""
    return int(evaluate(page, "() => {" + _PANEL + "return panel.content.widgets.length; }"))


def run_cell(page: Page, index: int, wait: bool = False, timeout: float = 120.0) -> None:
    """Run cell ``index`` of the current notebook (``notebook:run-cell`` on it).

    With ``wait=False`` (default) this returns as soon as the command is sent, so
    the page can be read while the cell runs; use :func:`wait_for_cell_running` /
    :func:`wait_for_cell_done`. With ``wait=True`` it returns when the cell has
    finished (its prompt shows an execution count).
    """
    evaluate(
        page,
        """(index) => {"""
        + _PANEL
        + """
            if (index < 0 || index >= panel.content.widgets.length)
                throw new Error(`cell ${index} does not exist (${panel.content.widgets.length} cells)`);
            panel.content.activeCellIndex = index;
            // Not awaited: the promise settles only when the cell finishes.
            app.commands.execute('notebook:run-cell');
            return true;
        }""",
        index,
    )
    if wait:
        wait_for_cell_running(page, index, timeout=timeout, allow_done=True)
        wait_for_cell_done(page, index, timeout=timeout)


def cell_prompt(page: Page, index: int) -> str:
    """The input prompt of cell ``index`` as shown: ``"[*]:"`` while it runs, ``"[3]:"`` after, ``"[ ]:"`` never run."""
    text = evaluate(
        page,
        """(index) => {"""
        + _PANEL
        + """
            const cell = panel.content.widgets[index];
            if (!cell) throw new Error(`cell ${index} does not exist`);
            const prompt = cell.node.querySelector('.jp-InputPrompt');
            return prompt ? prompt.textContent : '';
        }""",
        index,
    )
    return str(text).strip()


_RUNNING = re.compile(r"\[\*\]")
_DONE = re.compile(r"\[\d+\]")


def cell_is_running(page: Page, index: int) -> bool:
    """True while cell ``index`` shows ``[*]`` (queued or running)."""
    return bool(_RUNNING.search(cell_prompt(page, index)))


def wait_for_cell_running(page: Page, index: int, timeout: float = 30.0, allow_done: bool = False) -> None:
    """Wait until cell ``index`` shows ``[*]`` (or, with ``allow_done``, has already finished)."""
    _wait_for_prompt(page, index, r"\[\*\]" + (r"|\[\d+\]" if allow_done else ""), timeout)


def wait_for_cell_done(page: Page, index: int, timeout: float = 120.0) -> str:
    """Wait until cell ``index`` shows an execution count (``[n]``); return the prompt."""
    _wait_for_prompt(page, index, r"\[\d+\]", timeout)
    return cell_prompt(page, index)


def _wait_for_prompt(page: Page, index: int, pattern: str, timeout: float) -> None:
    try:
        page.wait_for_function(
            """([index, pattern]) => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const cell = w && w.content && w.content.widgets[index];
                const prompt = cell && cell.node.querySelector('.jp-InputPrompt');
                return !!prompt && new RegExp(pattern).test(prompt.textContent);
            }""",
            arg=[index, pattern],
            timeout=timeout * 1000,
            polling=100,
        )
    except Exception as exc:  # add what the page shows to Playwright's timeout
        raise AssertionError(
            f"cell {index} prompt never matched {pattern!r} within {timeout} s; "
            f"prompt {_safe(lambda: cell_prompt(page, index))!r}, kernel {_safe(lambda: kernel_status(page))!r}, "
            f"output {_safe(lambda: cell_output_text(page, index))[:2000]!r}"
        ) from exc


def _safe(fn: Any) -> str:
    try:
        return str(fn())
    except Exception as exc:  # pragma: no cover - diagnostics only
        return f"<{type(exc).__name__}: {exc}>"


def cell_output_text(page: Page, index: int) -> str:
    """Visible text of cell ``index``'s output area (empty if none)."""
    return str(
        evaluate(
            page,
            """(index) => {"""
            + _PANEL
            + """
                const cell = panel.content.widgets[index];
                if (!cell) throw new Error(`cell ${index} does not exist`);
                const out = cell.node.querySelector('.jp-OutputArea');
                return out ? out.innerText : '';
            }""",
            index,
        )
    )


def text_of(page: Page, selector: str) -> str:
    """``innerText`` of the first element matching ``selector`` (an ``HTML``/``Label`` widget's text)."""
    return page.locator(selector).first.inner_text()


def input_value(page: Page, selector: str) -> str:
    """Current value of the first ``<input>`` in or at ``selector`` (an ``IntText``'s number)."""
    locator = page.locator(selector).first
    tag = locator.evaluate("(el) => el.tagName")
    if str(tag).lower() != "input":
        locator = locator.locator("input").first
    return locator.input_value()


def bokeh_sources(page: Page) -> list[dict[str, Any]]:
    """Every ``ColumnDataSource`` in ``window.Bokeh.documents``: ``{doc, id, name, length, columns}``.

    ``length`` is the number of rows the page holds now (grows as the kernel streams).
    Empty when BokehJS is not on the page.
    """
    result = evaluate(
        page,
        """() => {
            const B = window.Bokeh;
            if (!B || !B.documents) return [];
            const out = [];
            B.documents.forEach((doc, di) => {
                for (const m of doc.all_models) {
                    if (typeof m.get_length !== 'function' || !m.data) continue;
                    const data = m.data;
                    const columns = data instanceof Map ? [...data.keys()] : Object.keys(data);
                    out.push({doc: di, id: m.id, name: m.name ?? null, length: m.get_length() ?? 0, columns});
                }
            });
            return out;
        }""",
    )
    return list(result)


def bokeh_document_count(page: Page) -> int:
    """``window.Bokeh.documents.length`` (0 without BokehJS)."""
    return int(evaluate(page, "() => (window.Bokeh && window.Bokeh.documents) ? window.Bokeh.documents.length : 0"))
