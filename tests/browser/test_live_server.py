"""The browser fixtures themselves: the real server answers the real browser."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import LiveServer


def test_the_browser_reaches_the_served_app(page: Page, live_server: LiveServer) -> None:
    response = page.goto("/readyz")
    assert response is not None
    assert response.status == 200
    assert live_server.url.startswith("http://127.0.0.1:")
    assert '"status"' in page.content()
