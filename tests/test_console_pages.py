"""The console's worklist and the participant page's forms, through the same services."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from api.models import AdverseEvent, AuditEvent, ExcusedDay, ScheduleEvent
from tests.console_client import ConsoleSession

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in Beijing


@pytest.fixture
def coordinator(factory):
    return factory.staff("coordinator", sites=("BJ302",), email="coord@example.org")


@pytest.fixture
def english(app, coordinator):
    session = ConsoleSession(app, **{"Accept-Language": "en"})
    assert session.login(coordinator.email).status_code == 303
    return session


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _follow(session, answer) -> str:  # type: ignore[no-untyped-def]
    assert answer.status_code == 303, _text(answer)[:500]
    return _text(session.get(answer.headers["Location"]))


def _post(session, p, path: str, data: dict):  # type: ignore[no-untyped-def]
    return session.post(
        f"/console/participants/{p.id}{path}", data, page=f"/console/participants/{p.id}"
    )


def _serious_ae(factory, p, aware: datetime, site: str = "BJ302") -> int:  # type: ignore[no-untyped-def]
    coordinator = factory.staff("coordinator", sites=(site,))
    answer = factory.as_(coordinator).post(
        f"/api/v1/participants/{p.id}/adverse-events",
        json={
            "term": "Hepatocellular carcinoma",
            "onset_date": p.enrolled_on.isoformat(),
            "grade": 3,
            "seriousness": ["tumour"],
            "relation_to_infusion": "unlikely",
            "outcome": "not_recovered",
            "awareness_at": aware.isoformat(),
        },
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_worklist_puts_serious_first_and_overdue_reports_in_red(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    other_site = factory.participant(site="LZU1", enrolled_on=date(2026, 11, 1))
    _serious_ae(factory, p, T0 - timedelta(hours=30))
    _serious_ae(factory, other_site, T0 - timedelta(hours=30), site="LZU1")
    page = _text(english.get("/console/"))
    assert p.study_code in page and other_site.study_code not in page
    alerts = page[page.index('id="h-alerts"') : page.index('id="h-sae"')]
    assert "Serious adverse event" in alerts
    sae = page[page.index('id="h-sae"') : page.index('id="h-low"')]
    assert 'class="overdue"' in sae and "Overdue by 6 h 0 min" in sae
    assert f"/console/participants/{p.id}#adverse-events" in sae


def test_worklist_shows_the_countdown_before_the_deadline(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    _serious_ae(factory, p, T0 - timedelta(hours=20))
    sae = _text(english.get("/console/"))
    sae = sae[sae.index('id="h-sae"') : sae.index('id="h-low"')]
    assert "4 h 0 min left" in sae and 'class="overdue"' not in sae


def test_worklist_lists_phones_nobody_can_reach_and_events_due(
    app, factory, clock, english, coordinator
):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 18))
    page = _text(english.get("/console/"))
    phones = page[page.index('id="h-phones"') :]
    assert p.study_code in phones and "No registered phone" in phones
    events = page[page.index('id="h-events"') : page.index('id="h-phones"')]
    assert "Infusion 1" in events and "Window closed" not in events  # month 0, window open
    clock.set(T0 + timedelta(days=10))  # the month-0 window closed with nothing recorded
    english.login(coordinator.email)  # ten days later: a new session
    events = _text(english.get("/console/"))
    events = events[events.index('id="h-events"') : events.index('id="h-phones"')]
    assert "Window closed, no date recorded" in events


def test_participants_filter_sort_and_paging(app, factory, clock, english):
    clock.set(T0)
    made = [factory.participant(arm="msc" if i % 2 else "control") for i in range(3)]
    page = _text(english.get("/console/participants?arm=msc&sort=study_code&dir=desc"))
    codes = re.findall(r">(BJ302-\d{4})</a></th>", page)
    assert codes == [made[1].study_code]
    page = _text(english.get("/console/participants?sort=study_code&dir=desc"))
    assert re.findall(r">(BJ302-\d{4})</a></th>", page) == [m.study_code for m in reversed(made)]
    assert "3 participants" in page


def test_record_actual_date_of_an_event(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 18))
    event = factory.scalar(
        select(ScheduleEvent)
        .where(ScheduleEvent.participant_id == p.id)
        .order_by(ScheduleEvent.target_date, ScheduleEvent.id)
    )
    page = _follow(
        english, _post(english, p, f"/schedule/{event.id}", {"actual_date": "2026-11-19"})
    )
    assert "Saved." in page
    stored = factory.scalar(select(ScheduleEvent).where(ScheduleEvent.id == event.id))
    assert (stored.status, stored.actual_date) == ("completed", date(2026, 11, 19))
    audit = factory.scalar(select(AuditEvent).where(AuditEvent.action == "schedule_event.updated"))
    assert audit is not None and audit.actor_id > 0


def test_a_rule_refusal_is_a_translated_sentence_and_saves_nothing(app, factory, clock):
    clock.set(T0)
    coordinator = factory.staff("coordinator")
    session = ConsoleSession(app)  # zh-CN
    session.login(coordinator.email)
    p = factory.participant(enrolled_on=date(2026, 11, 10))
    answer = _post(
        session,
        p,
        "/excused-days",
        {"from": "2026-11-01", "to": "2026-11-03", "reason": "hospital stay"},
    )
    assert "该日期早于入组日期。" in _follow(session, answer)
    assert factory.scalars(select(ExcusedDay)) == []


def test_excuse_days(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    answer = _post(
        english,
        p,
        "/excused-days",
        {"from": "2026-11-03", "to": "2026-11-05", "reason": "hospital stay"},
    )
    assert "3 days excused." in _follow(english, answer)
    assert len(factory.scalars(select(ExcusedDay).where(ExcusedDay.participant_id == p.id))) == 3


def test_record_a_serious_adverse_event_in_the_site_zone(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    answer = _post(
        english,
        p,
        "/adverse-events",
        {
            "term": "Variceal bleeding",
            "onset_date": "2026-11-19",
            "grade": "4",
            "seriousness__present": "1",
            "seriousness": ["life_threatening"],
            "relation_to_infusion": "unlikely",
            "outcome": "recovering",
            "awareness_at": "2026-11-20T09:30",
        },
    )
    page = _follow(english, answer)
    assert "The adverse event was recorded." in page
    ae = factory.scalar(select(AdverseEvent).where(AdverseEvent.participant_id == p.id))
    assert ae.seriousness == ["life_threatening"]
    assert ae.awareness_at == datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 in Beijing
    assert "2026-11-21 09:30 CST" in page  # the deadline, in the site's zone


def test_stale_adverse_event_form_is_refused(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    ae_id = _serious_ae(factory, p, T0 - timedelta(hours=1))
    form = {
        "version": "1",
        "term": "HCC, confirmed",
        "onset_date": "2026-11-01",
        "grade": "3",
        "seriousness__present": "1",
        "seriousness": ["tumour"],
        "relation_to_infusion": "unlikely",
        "outcome": "not_recovered",
        "reason": "biopsy result",
    }
    assert "Saved." in _follow(english, _post(english, p, f"/adverse-events/{ae_id}", form))
    stale = _follow(
        english, _post(english, p, f"/adverse-events/{ae_id}", {**form, "term": "something else"})
    )
    assert "Nothing was saved" in stale
    ae = factory.scalar(select(AdverseEvent).where(AdverseEvent.id == ae_id))
    assert (ae.term, ae.version) == ("HCC, confirmed", 2)


def test_reissue_activation_code_shows_the_new_code_once(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    page = _follow(english, _post(english, p, "/activation-code", {"reason": "new phone"}))
    code = re.search(r'data-testid="activation-code">([^<]+)<', page).group(1)
    assert code != p.activation_code
    old = factory.client.post(
        "/api/v1/auth/participants/activate", json={"activation_code": p.activation_code}
    )
    assert old.status_code == 401
    new = factory.client.post("/api/v1/auth/participants/activate", json={"activation_code": code})
    assert new.status_code == 200


def test_participant_page_shows_the_calendar_with_scores_in_text(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 15))
    admin = factory.staff("admin")
    factory.as_(admin).post(
        f"/api/v1/participants/{p.id}/diary-entries",
        json={
            "diary_date": "2026-11-16",
            "abdominal_distension": 3,
            "decreased_appetite": 2,
            "debilitation": 1,
            "leg_edema": 0,
            "discomfort_grade": 2,
            "reason": "paper diary",
        },
    )
    page = _text(english.get(f"/console/participants/{p.id}"))
    assert (
        "2026-11-16 · late · Distension 3 · Appetite 2 · Fatigue 1 · Swelling 0 · Grade 2" in page
    )
    assert "2026-11-17 · missing" in page
    assert "2026-11-20 · not yet due" in page
    assert "2026-11-14 · not expected" in page


def test_participant_page_links_to_its_audit_trail_and_alerts(app, factory, clock, english):
    clock.set(T0)
    p = factory.participant(enrolled_on=date(2026, 11, 1))
    _serious_ae(factory, p, T0 - timedelta(hours=1))
    page = _text(english.get(f"/console/participants/{p.id}"))
    assert f'href="/console/participants/{p.id}/audit"' in page
    alert_links = re.findall(r'href="(/console/alerts/\d+)"', page)
    assert alert_links and english.get(alert_links[0]).status_code == 200
