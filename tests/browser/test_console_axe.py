"""axe-core on every console page at 1280 px and at 390 px: no serious or critical violation.

One test walks every page (signed out, as a coordinator, as an admin) on data that fills
each section, so tables, charts, forms and notices are all checked. The markup does not
depend on the database, and axe takes seconds a page, so this walk runs on the first
backend only (deselected on the others, see tests/conftest.py).
"""

from __future__ import annotations

from datetime import date

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from api.clock import utcnow
from api.extensions import db
from api.models import Participant
from api.services.alerts import symptom_alert_for_entry
from tests.browser.conftest import NARROW, WIDE, LiveServer
from tests.browser.test_console_browser import sign_in
from tests.diary_rows import add_entries, add_entry

AXE = Axe()
BLOCKING = {"serious", "critical"}


def _blocking(page: Page) -> list[str]:
    results = AXE.run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} - "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING
    ]


def _check(page: Page, urls: list[str], found: dict[str, list[str]]) -> None:
    for url in urls:
        for name, size in (("1280", WIDE), ("390", NARROW)):
            page.set_viewport_size(size)
            answer = page.goto(url)
            assert answer is not None and answer.status < 500, url
            problems = _blocking(page)
            if problems:
                found[f"{url} @ {name} px"] = problems


def _data(app, factory, clock) -> dict[str, int]:
    clock.set("2026-06-01T09:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 5, 1))
    add_entries(app, participant, "2026-05-01", "2026-05-20")
    entry_id = add_entry(app, participant, "2026-05-31", grade=4, scores=(3, 2, 3, 1))
    other_entry = add_entry(app, participant, "2026-05-30", grade=3)
    with app.app_context():
        owner = db.session.get(Participant, participant.id)
        from api.models import DiaryEntry

        alert = symptom_alert_for_entry(db.session.get(DiaryEntry, entry_id), owner, utcnow())
        symptom_alert_for_entry(db.session.get(DiaryEntry, other_entry), owner, utcnow())
        db.session.commit()
        return {"participant": participant.id, "alert": alert.id}


@pytest.mark.first_backend_only
def test_no_serious_or_critical_violation_on_any_page(
    browser: Browser, live_server: LiveServer, app, factory, clock
) -> None:
    ids = _data(app, factory, clock)
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    admin = factory.staff("admin", sites=())
    found: dict[str, list[str]] = {}
    pid, aid = ids["participant"], ids["alert"]
    for who, urls in (
        (None, ["/console/login"]),
        (
            coordinator,
            [
                "/console/",
                "/console/participants",
                "/console/participants/new",
                f"/console/participants/{pid}",
                f"/console/participants/{pid}/audit",
                "/console/alerts",
                f"/console/alerts/{aid}",
                f"/console/alerts/{aid}/adverse-event",
                "/console/alerts?status=acknowledged",
                "/console/compliance",
                "/console/participants/999999",
            ],
        ),
        (admin, ["/console/staff"]),
    ):
        context = browser.new_context(base_url=live_server.url, viewport=WIDE, locale="zh-CN")
        try:
            page = context.new_page()
            if who is not None:
                sign_in(page, who.email)
            _check(page, urls, found)
        finally:
            context.close()
    assert found == {}
