"""Alerts, compliance, audit and staff pages through the console's forms (both databases).

Each write goes through the same services as the API, so the checks are the API's: the
alert's state and audit row, nothing written on a refusal, the role rules (403) and the
site scoping (404), and refusals shown as translated sentences.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from api.clock import utcnow
from api.extensions import db
from api.models import AdverseEvent, Alert, AuditEvent, DiaryEntry, Participant, StaffUser
from api.services.alerts import raise_alert, symptom_alert_for_entry
from tests.console_client import ConsoleSession
from tests.diary_rows import add_entries, add_entry
from tests.helpers import PASSWORD
from tests.test_console_figures import funnel_data  # noqa: F401 (the funnel's data set)

NOW = "2026-06-01T09:00:00+08:00"


def _session(app, staff) -> ConsoleSession:
    console = ConsoleSession(app, **{"Accept-Language": "en"})
    answer = console.login(staff.email)
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    return console


def _symptom_alert(app, participant, day: str, grade: int = 4) -> tuple[int, int]:
    entry_id = add_entry(app, participant, day, grade=grade)
    with app.app_context():
        alert = symptom_alert_for_entry(
            db.session.get(DiaryEntry, entry_id),
            db.session.get(Participant, participant.id),
            utcnow(),
        )
        db.session.commit()
        return entry_id, alert.id


def _missed_alert(app, participant) -> int:
    with app.app_context():
        alert = raise_alert(
            db.session.get(Participant, participant.id),
            "missed_diary",
            f"missed_diary:{participant.id}:2026-05-25",
            utcnow(),
            details={"run_start": "2026-05-25", "days_missed": 4},
        )
        db.session.commit()
        return alert.id


@pytest.fixture
def site(app, factory, clock):
    clock.set(NOW)
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    participant = factory.participant(enrolled_on=date(2026, 5, 1))
    return {"coordinator": coordinator, "participant": participant}


def test_alert_list_shows_open_then_acknowledged_with_who_and_the_note(app, site):
    alert_id = _missed_alert(app, site["participant"])
    console = _session(app, site["coordinator"])
    page = console.get("/console/alerts").get_data(as_text=True)
    assert "4 diary days missed since 2026-05-25" in page
    answer = console.post(
        f"/console/alerts/{alert_id}/acknowledge",
        {"note": "Phoned: was in hospital"},
        page=f"/console/alerts/{alert_id}",
    )
    assert answer.status_code == 303
    assert "No open alerts" in console.get("/console/alerts").get_data(as_text=True)
    done = console.get("/console/alerts?status=acknowledged").get_data(as_text=True)
    assert site["coordinator"].email in done and "Phoned: was in hospital" in done
    with app.app_context():
        row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledged"))
        assert row.actor_id == site["coordinator"].id and row.reason == "Phoned: was in hospital"


def test_a_symptom_alert_without_decision_is_refused_and_stays_open(app, site):
    _entry, alert_id = _symptom_alert(app, site["participant"], "2026-05-31")
    console = _session(app, site["coordinator"])
    answer = console.post(
        f"/console/alerts/{alert_id}/acknowledge",
        {"note": "seen"},
        page=f"/console/alerts/{alert_id}",
    )
    assert answer.status_code == 303
    page = console.get(f"/console/alerts/{alert_id}").get_data(as_text=True)
    assert "needs the site&#39;s decision" in page or "needs the site's decision" in page
    with app.app_context():
        assert db.session.get(Alert, alert_id).status == "open"


def test_second_acknowledgement_is_refused_with_a_sentence(app, site, factory):
    alert_id = _missed_alert(app, site["participant"])
    first = _session(app, site["coordinator"])
    token = first.token(f"/console/alerts/{alert_id}")
    assert (
        first.post(
            f"/console/alerts/{alert_id}/acknowledge", {"note": "one", "csrf_token": token}
        ).status_code
        == 303
    )
    again = first.post(
        f"/console/alerts/{alert_id}/acknowledge", {"note": "two", "csrf_token": token}
    )
    assert again.status_code == 303
    page = first.get(f"/console/alerts/{alert_id}").get_data(as_text=True)
    assert "already acknowledged" in page
    with app.app_context():
        assert db.session.get(Alert, alert_id).note == "one"


def test_adverse_event_form_refuses_missing_fields_and_records_nothing(app, site):
    _entry, alert_id = _symptom_alert(app, site["participant"], "2026-05-31")
    console = _session(app, site["coordinator"])
    form = f"/console/alerts/{alert_id}/adverse-event"
    answer = console.post(form, {"term": "", "grade": "4", "note": "seen"}, page=form)
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert 'id="err-term"' in text and 'id="err-outcome"' in text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdverseEvent)) == 0
        assert db.session.get(Alert, alert_id).status == "open"


def test_acknowledging_is_for_coordinators_as_in_the_api(app, site, factory):
    alert_id = _missed_alert(app, site["participant"])
    admin = _session(app, factory.staff("admin", sites=()))
    page = admin.get(f"/console/alerts/{alert_id}").get_data(as_text=True)
    assert "acknowledge" not in page.split("<main", 1)[1].split("</main>")[0].lower().replace(
        "acknowledged", ""
    )
    answer = admin.post(f"/console/alerts/{alert_id}/acknowledge", {"note": "x"}, page="/console/")
    assert answer.status_code == 403


def test_another_sites_alert_is_404(app, site, factory):
    elsewhere = factory.participant(site="LZU1", enrolled_on=date(2026, 5, 1))
    alert_id = _missed_alert(app, elsewhere)
    console = _session(app, site["coordinator"])
    assert console.get(f"/console/alerts/{alert_id}").status_code == 404
    assert console.get(f"/console/alerts/{alert_id}/adverse-event").status_code == 404
    assert elsewhere.study_code not in console.get("/console/alerts").get_data(as_text=True)


def test_compliance_page_shows_figures_chart_funnel_and_exports_own_site(app, site, factory):
    add_entries(app, site["participant"], "2026-05-01", "2026-05-20")
    elsewhere = factory.participant(site="LZU1", enrolled_on=date(2026, 5, 1))
    add_entry(app, elsewhere, "2026-05-02")
    console = _session(app, site["coordinator"])
    page = console.get("/console/compliance").get_data(as_text=True)
    assert "Daily on-time rate at BJ302, last 60 days" in page
    assert page.count('role="img"') == 1  # the rate chart; no reminder was sent yet
    assert page.count("No reminder of this kind has been sent yet.") == 3
    assert site["participant"].study_code in page and elsewhere.study_code not in page
    assert "Diary reminders" in page
    csv = console.get("/console/compliance/diary-entries.csv").get_data(as_text=True)
    lines = csv.strip().splitlines()
    assert lines[0].startswith("entry_id,study_code,site")
    assert len(lines) == 21 and all(",BJ302," in line for line in lines[1:])
    assert console.get("/console/compliance?site=LZU1").status_code == 404


def test_audit_page_reads_as_who_when_what_why_and_the_chain_holds(app, site, factory):
    alert_id = _missed_alert(app, site["participant"])
    console = _session(app, site["coordinator"])
    console.post(
        f"/console/alerts/{alert_id}/acknowledge",
        {"note": "Called back"},
        page=f"/console/alerts/{alert_id}",
    )
    page = console.get(f"/console/participants/{site['participant'].id}/audit").get_data(
        as_text=True
    )
    assert "Tamper evidence verified" in page
    assert "Alert acknowledged" in page and site["coordinator"].email in page
    assert "Called back" in page
    assert "open</span>" not in page  # values are shown plainly
    assert 'open <span aria-hidden="true">→</span>' in page


def test_staff_page_adds_disables_and_keeps_the_last_admin(app, factory):
    admin = factory.staff("admin", sites=())
    console = _session(app, admin)
    answer = console.post(
        "/console/staff/new",
        {
            "email": "New.Coord@example.org",
            "role": "coordinator",
            "sites": ["BJ302"],
            "password": PASSWORD,
        },
        page="/console/staff",
    )
    assert answer.status_code == 303
    with app.app_context():
        made = db.session.scalar(
            select(StaffUser).where(StaffUser.email == "new.coord@example.org")
        )
        assert made.site_codes == ["BJ302"] and made.must_change_password
        made_id = made.id
    assert (
        console.post(
            f"/console/staff/{made_id}/active",
            {"active": "0", "reason": "left the study"},
            page="/console/staff",
        ).status_code
        == 303
    )
    console.post(
        f"/console/staff/{admin.id}/active",
        {"active": "0", "reason": "oops"},
        page="/console/staff",
    )
    page = console.get("/console/staff").get_data(as_text=True)
    assert "last active administrator" in page
    with app.app_context():
        assert db.session.get(StaffUser, made_id).is_active is False
        assert db.session.get(StaffUser, admin.id).is_active is True
    short = console.post(
        "/console/staff/new",
        {"email": "x@example.org", "role": "monitor", "password": "short"},
        page="/console/staff",
    )
    assert short.status_code == 422


def test_staff_page_is_for_admins_only(app, site):
    console = _session(app, site["coordinator"])
    assert console.get("/console/staff").status_code == 403
    assert (
        console.post(
            "/console/staff/new",
            {"email": "y@example.org", "role": "admin", "password": PASSWORD},
            page="/console/",
        ).status_code
        == 403
    )


def test_compliance_page_draws_the_funnel_of_sent_reminders(app, factory, funnel_data):  # noqa: F811
    console = _session(app, factory.staff("coordinator", sites=("BJ302",)))
    page = console.get("/console/compliance?site=BJ302").get_data(as_text=True)
    assert page.count('role="img"') == 4  # the rate chart and a funnel per kind
    assert "4 (100 %)" in page and "2 (50 %)" in page  # diary: sent 4, delivered 2
    assert "No reminder of this kind has been sent yet." not in page


def test_open_alerts_list_the_most_severe_first(app, site):
    missed = _missed_alert(app, site["participant"])
    _entry, mild = _symptom_alert(app, site["participant"], "2026-05-29", grade=3)
    _entry, urgent = _symptom_alert(app, site["participant"], "2026-05-30", grade=4)
    page = _session(app, site["coordinator"]).get("/console/alerts").get_data(as_text=True)
    order = [page.index(f'/console/alerts/{i}"') for i in (urgent, mild, missed)]
    assert order == sorted(order)
