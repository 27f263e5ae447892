"""Fixtures for browser tests: a real JupyterLab and headless Debian Chromium.

* ``jupyterlab`` (session): a running :class:`harness.JupyterLabServer`.
* ``browser`` (session): a Playwright ``Browser`` on ``/usr/bin/chromium``.
* ``page`` (function): a fresh context and page; on failure a full-page
  screenshot and the page's console log are kept in ``test-artifacts/``.

Tests are skipped with a reason when Playwright, JupyterLab or Chromium is not
installed (CI installs them). Mark browser tests ``@pytest.mark.browser``.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Generator, Iterator

import pytest
from harness import CHROMIUM, CHROMIUM_ARGS, JupyterLabServer, start_jupyterlab

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item (``item.rep_setup`` / ``rep_call``) for fixtures to read."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed ({why}); pip install '.[jupyter,test]'")


@pytest.fixture(scope="session")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLabServer]:
    """A real JupyterLab on 127.0.0.1 with private Jupyter dirs and a kernel on ``sys.executable``."""
    _require("jupyterlab", "the browser tests drive a real JupyterLab")
    _require("ipykernel", "the notebook kernel runs on the test interpreter")
    _require("nbformat", "notebooks are written with nbformat")
    server = start_jupyterlab(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    """Playwright's sync API, started once per session."""
    _require("playwright", "the browser tests drive Chromium through Playwright")
    from playwright.sync_api import sync_playwright

    manager = sync_playwright()
    instance = manager.start()
    try:
        yield instance
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium (``/usr/bin/chromium``); never a Playwright-downloaded build."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; screenshot and console log kept in test-artifacts/ on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"[{message.type}] {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        failed = any(
            getattr(getattr(request.node, f"rep_{when}", None), "failed", False) for when in ("setup", "call")
        )
        if failed:
            _keep_artifacts(request, page, console)
        context.close()


def _keep_artifacts(request: pytest.FixtureRequest, page: Page, console: list[str]) -> None:
    folder = Path(request.config.rootpath) / "test-artifacts"
    folder.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid).strip("_")[-150:]
    try:
        page.screenshot(path=str(folder / f"{stem}.png"), full_page=True, timeout=10_000)
    except Exception as exc:  # the page may be gone; keep what we can
        console.append(f"[harness] screenshot failed: {exc}")
    (folder / f"{stem}.console.txt").write_text("\n".join(console) + "\n", errors="replace")
