"""Make the console screenshots in docs/ from the demo data set.

    .venv/bin/python docs/console_screenshots.py

A fresh SQLite database in a temporary folder gets the demo trial (`api/services/demo.py`),
the app is served on a free local port, and Debian's chromium (through Playwright, no
browser download) signs in as the first site's coordinator and photographs the worklist,
the participant page, the alerts page and the compliance page in English and Chinese at
1280 px wide.
"""

from __future__ import annotations

import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import Page, sync_playwright
from sqlalchemy import select
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api import create_app  # noqa: E402
from api.clock import utcnow  # noqa: E402
from api.extensions import db  # noqa: E402
from api.models import Alert  # noqa: E402
from api.services.demo import build_demo  # noqa: E402

OUT = ROOT / "docs"
WIDTH = 1280
MAX_HEIGHT = 2200


def _shoot(page: Page, url: str, name: str) -> None:
    page.goto(url)
    height = min(page.evaluate("document.documentElement.scrollHeight"), MAX_HEIGHT)
    path = OUT / f"{name}.png"
    page.screenshot(
        path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": WIDTH, "height": height}
    )
    print(f"wrote {path.relative_to(ROOT)} ({height} px high)")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        app = create_app(
            {
                "APP_ENV": "development",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/demo.sqlite3",
                "AUTO_MIGRATE": True,
                "JWT_SECRET": "screenshots-only-" + "x" * 32,
            }
        )
        with app.app_context():
            summary = build_demo(utcnow(), seed=1)
            db.session.commit()
            _role, email, password = next(c for c in summary.credentials if c[0] == "coordinator")
            coordinator_site_alert = db.session.scalar(
                select(Alert).where(Alert.status == "open").order_by(Alert.kind.desc(), Alert.id)
            )
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path="/usr/bin/chromium")
                context = browser.new_context(
                    base_url=base, viewport={"width": WIDTH, "height": 900}, locale="en-GB"
                )
                page = context.new_page()
                page.goto("/console/login")
                page.fill("#email", email)
                page.fill("#password", password)
                page.click("form.stack button[type=submit]")
                participant_url = _participant_with_alert(page, coordinator_site_alert)
                for locale, suffix in (("en", "en"), ("zh-CN", "zh")):
                    page.goto("/console/")
                    page.click(f"form.locale-switch button[value='{locale}']")
                    _shoot(page, "/console/", f"console-today-{suffix}")
                    _shoot(page, participant_url, f"console-participant-{suffix}")
                    _shoot(page, "/console/alerts", f"console-alerts-{suffix}")
                    _shoot(page, "/console/compliance", f"console-compliance-{suffix}")
                browser.close()
        finally:
            server.shutdown()


def _participant_with_alert(page: Page, fallback: Alert | None) -> str:
    """The participant of the first open alert the coordinator sees (else the first one)."""
    page.goto("/console/alerts")
    link = page.locator("table.alerts tbody tr th a").first
    if link.count():
        return link.get_attribute("href") or "/console/participants"
    if fallback is not None:
        return f"/console/participants/{fallback.participant_id}"
    return "/console/participants"


if __name__ == "__main__":
    main()
