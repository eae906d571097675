"""The console in a real browser (chromium through Playwright), on SQLite and PostgreSQL.

Each test signs in through the login form as a person would, clicks, and reads the page;
the rows it acts on are checked in the database afterwards. The server is the real app
on a local port (tests/browser/conftest.py), sharing the injected clock with the test.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from api.clock import utcnow
from api.extensions import db
from api.models import AdverseEvent, Alert, DiaryEntry, DiaryEntryVersion, Participant
from api.services.alerts import symptom_alert_for_entry
from tests.diary_rows import add_entry
from tests.helpers import PASSWORD
from tests.qr_decode import decode


def sign_in(page: Page, email: str, password: str = PASSWORD, next_url: str = "/console/") -> None:
    page.goto(next_url)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form.stack button[type=submit]")


def _symptom_alert(app, participant: Participant, day: date, grade: int = 4) -> tuple[int, int]:
    """A diary entry of `grade` for `day` and the alert it raises: (entry id, alert id)."""
    entry_id = add_entry(app, participant, day, grade=grade, scores=(3, 2, 3, 1))
    with app.app_context():
        entry = db.session.get(DiaryEntry, entry_id)
        owner = db.session.get(Participant, participant.id)
        alert = symptom_alert_for_entry(entry, owner, utcnow())
        db.session.commit()
        return entry_id, alert.id


def test_sign_in_wrong_password_and_sign_out(page: Page, factory) -> None:
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    page.goto("/console/participants")
    expect(page).to_have_url(re.compile(r"/console/login"))
    sign_in(page, coordinator.email, "not the password at all", "/console/login")
    expect(page.locator("#login-error")).to_be_visible()
    assert page.locator("#email").input_value() == coordinator.email
    sign_in(page, coordinator.email, PASSWORD, "/console/login")
    expect(page.locator("h1")).to_have_text("Today")
    expect(page.locator(".whoami")).to_contain_text(coordinator.email)
    page.click("form.logout button")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_idle_timeout_on_the_injected_clock(page: Page, factory, clock) -> None:
    start = clock.set("2026-06-01T09:00:00+08:00")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    sign_in(page, coordinator.email)
    expect(page.locator("h1")).to_have_text("Today")
    clock.set(start + timedelta(minutes=29))
    page.goto("/console/participants")
    expect(page.locator("h1")).to_have_text("Participants")
    clock.set(start + timedelta(minutes=29 + 31))
    page.goto("/console/participants")
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.locator(".notice-info")).to_contain_text("inactivity")


def test_a_form_without_its_csrf_token_is_refused(page: Page, factory) -> None:
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    sign_in(page, coordinator.email)
    expect(page.locator("h1")).to_have_text("Today")
    page.evaluate("document.querySelector('form.logout input[name=csrf_token]').remove()")
    with page.expect_response(re.compile(r"/console/logout")) as answer:
        page.click("form.logout button")
    assert answer.value.status == 400
    expect(page.locator(".error-page")).to_contain_text("Reload the page")
    page.goto("/console/")  # still signed in: the refused form changed nothing
    expect(page.locator("h1")).to_have_text("Today")


def test_language_switch_is_kept_on_the_account(page: Page, factory, browser, live_server) -> None:
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    sign_in(page, coordinator.email)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.click("form.locale-switch button[value='zh-CN']")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("今日待办")
    other = browser.new_context(base_url=live_server.url, locale="en-GB")
    try:
        second = other.new_page()
        sign_in(second, coordinator.email)
        expect(second.locator("h1")).to_have_text("今日待办")  # the account's choice wins
    finally:
        other.close()


@pytest.mark.first_backend_only
def test_worklist_on_the_demo_data_set(page: Page, app, clock) -> None:
    """The demo takes tens of seconds to build, and its data on both databases is checked by
    tests/test_demo.py: the browser looks at it on the first backend only."""
    from api.services.demo import build_demo

    clock.set("2026-06-01T09:00:00+08:00")
    with app.app_context():
        summary = build_demo(utcnow(), seed=7)
        db.session.commit()
    _role, email, password = next(c for c in summary.credentials if c[0] == "coordinator")
    sign_in(page, email, password)
    expect(page.locator("h1")).to_have_text("Today")
    alerts = page.locator("#h-alerts + .table-wrap tbody tr")
    assert alerts.count() >= 1
    first_link = alerts.first.locator("a").last
    first_link.click()
    expect(page.locator("h1")).to_be_visible()
    assert "/console/" in page.url


def test_enrol_shows_the_code_once_with_a_qr_code_that_decodes_to_it(page: Page, factory) -> None:
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    sign_in(page, coordinator.email, next_url="/console/participants/new")
    page.check("input[name=arm][value=msc]")
    page.check("input[name=locale][value=zh-CN]")
    page.click("form.form-grid button[type=submit]")
    expect(page.locator(".activation-code")).to_be_visible()
    code = page.locator(".activation-code").inner_text().strip()
    svg = page.locator("svg.qr, .qr-figure svg").first.evaluate("e => e.outerHTML")
    assert decode(svg) == [code]
    page.reload()
    expect(page.locator(".activation-code")).to_have_count(0)


def test_grade_4_alert_acknowledged_as_adverse_event_through_the_prefilled_form(
    page: Page, app, factory, clock
) -> None:
    clock.set("2026-06-01T09:00:00+08:00")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    participant = factory.participant(enrolled_on=date(2026, 5, 1))
    entry_id, alert_id = _symptom_alert(app, participant, date(2026, 5, 31))
    sign_in(page, coordinator.email, next_url="/console/alerts")
    row = page.locator("table.alerts tbody tr", has_text=participant.study_code)
    expect(row).to_contain_text("grade 4")
    row.locator("a", has_text="Review").click()
    page.fill("#note", "Phoned the participant: severe distension since yesterday.")
    page.check("input[name=decision][value=adverse_event_recorded]")
    page.click("#h-ack ~ form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/console/alerts/{alert_id}/adverse-event$"))
    assert page.locator("#onset_date").input_value() == "2026-05-31"
    assert page.locator("#grade").input_value() == "4"
    assert "grade 4" in page.locator("#description").input_value()
    assert page.locator("#note").input_value().startswith("Phoned the participant")
    page.fill("#term", "Abdominal distension")
    page.select_option("#relation_to_infusion", "possible")
    page.select_option("#outcome", "recovering")
    page.click("form.form-grid button[type=submit]")
    expect(page.locator(".notice-success")).to_contain_text("Abdominal distension")
    expect(page.locator(".facts")).to_contain_text("Adverse event recorded")
    with app.app_context():
        alert = db.session.get(Alert, alert_id)
        ae = db.session.scalar(
            select(AdverseEvent).where(AdverseEvent.participant_id == participant.id)
        )
        assert alert.status == "acknowledged"
        assert alert.decision == "adverse_event_recorded"
        assert alert.adverse_event_id == ae.id
        assert ae.diary_entry_id == entry_id and ae.grade == 4
        assert alert.acknowledged_by_staff_id == coordinator.id


def test_amend_with_a_reason_shows_the_new_version_and_a_stale_form_is_refused(
    page: Page, context, app, factory, clock
) -> None:
    clock.set("2026-06-01T09:00:00+08:00")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    participant = factory.participant(enrolled_on=date(2026, 5, 1))
    entry_id = add_entry(app, participant, "2026-05-30")
    url = f"/console/participants/{participant.id}"
    sign_in(page, coordinator.email, next_url=url)
    stale = context.new_page()
    stale.goto(url)  # a second tab opens the same form on version 1
    entry = page.locator(f"#entry-{entry_id}")
    entry.locator("summary", has_text="Amend").click()
    entry.locator("select[name=discomfort_grade]").select_option("2")
    entry.locator("input[name=reason]").fill("Participant corrected the grade by phone")
    entry.locator("form button[type=submit]").click()
    expect(page.locator(".notice-success")).to_be_visible()
    entry = page.locator(f"#entry-{entry_id}")
    entry.locator("summary", has_text="Every version").click()
    expect(entry.locator("ol.versions li")).to_have_count(2)
    expect(entry.locator("ol.versions")).to_contain_text("Participant corrected the grade by phone")

    old = stale.locator(f"#entry-{entry_id}")
    old.locator("summary", has_text="Amend").click()
    old.locator("select[name=discomfort_grade]").select_option("3")
    old.locator("input[name=reason]").fill("Typed from the paper form")
    old.locator("form button[type=submit]").click()
    expect(stale.locator(".notice-error")).to_be_visible()
    with app.app_context():
        versions = db.session.scalars(
            select(DiaryEntryVersion.discomfort_grade)
            .where(DiaryEntryVersion.entry_id == entry_id)
            .order_by(DiaryEntryVersion.version)
        ).all()
        assert versions == [0, 2]  # the stale form wrote nothing


def test_monitor_sees_no_write_controls_and_a_forged_post_is_403(
    page: Page, app, factory, clock
) -> None:
    clock.set("2026-06-01T09:00:00+08:00")
    monitor = factory.staff("monitor", sites=())
    participant = factory.participant(enrolled_on=date(2026, 5, 1))
    _entry_id, alert_id = _symptom_alert(app, participant, date(2026, 5, 31))
    sign_in(page, monitor.email, next_url=f"/console/participants/{participant.id}")
    expect(page.locator("h1")).to_contain_text(participant.study_code)
    # No form on the page writes: the only POST forms are the language switch and sign-out.
    actions = page.locator("main form[method=post]")
    assert actions.count() == 0
    page.goto(f"/console/alerts/{alert_id}")
    assert page.locator("main form[method=post]").count() == 0
    page.goto("/console/participants")
    expect(page.locator("a[href='/console/participants/new']")).to_have_count(0)
    token = page.locator("form.logout input[name=csrf_token]").input_value()
    answer = page.request.post(
        f"/console/alerts/{alert_id}/acknowledge",
        form={"csrf_token": token, "note": "forged", "decision": "not_adverse_event"},
        max_redirects=0,
    )
    assert answer.status == 403
    forged_status = page.request.post(
        f"/console/participants/{participant.id}/status",
        form={"csrf_token": token, "status": "withdrawn", "reason": "forged", "confirm": "yes"},
        max_redirects=0,
    )
    assert forged_status.status == 403
    with app.app_context():
        assert db.session.get(Alert, alert_id).status == "open"
        assert db.session.get(Participant, participant.id).status == "active"


def test_another_sites_participant_and_alert_are_404(page: Page, app, factory, clock) -> None:
    clock.set("2026-06-01T09:00:00+08:00")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    elsewhere = factory.participant(site="LZU1", enrolled_on=date(2026, 5, 1))
    _entry_id, alert_id = _symptom_alert(app, elsewhere, date(2026, 5, 31))
    sign_in(page, coordinator.email)
    for url in (
        f"/console/participants/{elsewhere.id}",
        f"/console/participants/{elsewhere.id}/audit",
        f"/console/alerts/{alert_id}",
    ):
        answer = page.goto(url)
        assert answer is not None and answer.status == 404, url
    token = page.locator("form.logout input[name=csrf_token]").input_value()
    forged = page.request.post(
        f"/console/alerts/{alert_id}/acknowledge",
        form={"csrf_token": token, "note": "not mine", "decision": "not_adverse_event"},
        max_redirects=0,
    )
    assert forged.status == 404
    with app.app_context():
        assert db.session.get(Alert, alert_id).status == "open"
