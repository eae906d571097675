"""Browser fixtures: the real app served over HTTP on 127.0.0.1, driven by Debian's chromium.

The server is Werkzeug's, in a thread of the test process, so it shares the per-backend
`app` (and its injected clock) with the rest of the suite: a test can set the clock, make
rows with the factory, then look at them in the browser. No browser is downloaded:
Playwright drives `/usr/bin/chromium` (CHROMIUM_PATH overrides).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 390, "height": 844}


@dataclass(frozen=True)
class LiveServer:
    """Where the running app answers."""

    url: str
    app: Flask


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[LiveServer]:
    """Serve the per-backend app on a free port (port 0: the kernel picks one)."""
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", app)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Per module: Playwright's sync API runs an event loop in this thread while it lives,
    and tests elsewhere in the suite call `asyncio.run`, which refuses to start inside one."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    chromium = playwright_driver.chromium.launch(
        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, at the wide size, in English."""
    ctx = browser.new_context(base_url=live_server.url, viewport=WIDE, locale="en-GB")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()
