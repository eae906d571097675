"""Alerts: missed-diary runs (the periodic check), listing, acknowledging with a decision."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from api.extensions import db
from api.models import Alert, AuditEvent, DiaryEntry, Participant
from api.services.alerts import check_missed_diaries, symptom_alert_for_entry
from tests.diary_rows import add_entries, add_entry

NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai, Feb 28 20:00 in LA


def check(app, now=NOW) -> int:
    with app.app_context():
        raised = check_missed_diaries(now)
        db.session.commit()
        return raised


def missed_alerts(factory):
    return factory.scalars(select(Alert).where(Alert.kind == "missed_diary").order_by(Alert.id))


def symptom_alert(app, participant, day, grade) -> int:
    """A diary entry with this grade and the alert the diary code raises for it."""
    entry_id = add_entry(app, participant, day, grade=grade)
    with app.app_context():
        entry = db.session.get(DiaryEntry, entry_id)
        alert = symptom_alert_for_entry(entry, db.session.get(Participant, participant.id), NOW)
        db.session.commit()
        return alert.id


def test_three_missed_days_raise_one_alert_per_run(app, factory, clock):
    clock.set(NOW)
    p = factory.participant(enrolled_on=date(2026, 2, 20))
    add_entries(app, p, "2026-02-20", "2026-02-24")
    assert check(app) == 1  # Feb 25-28
    assert check(app) == 0
    assert check(app, datetime(2026, 3, 2, 4, 0, tzinfo=UTC)) == 0  # the same run goes on
    [alert] = missed_alerts(factory)
    assert alert.details == {"run_start": "2026-02-25", "days_missed": 4}
    assert alert.dedupe_key == f"missed_diary:{p.id}:2026-02-25"
    add_entry(app, p, "2026-03-01", late=True)
    assert check(app, datetime(2026, 3, 4, 4, 0, tzinfo=UTC)) == 0  # Mar 2-3: two days
    assert check(app, datetime(2026, 3, 5, 4, 0, tzinfo=UTC)) == 1  # Mar 2-4: a new run
    assert [a.details["run_start"] for a in missed_alerts(factory)] == ["2026-02-25", "2026-03-02"]


def test_excused_days_break_runs_and_never_alert(app, factory, clock):
    clock.set(NOW)
    coordinator = factory.staff()
    hospital = factory.participant(enrolled_on=date(2026, 2, 20))
    broken = factory.participant(enrolled_on=date(2026, 2, 20))
    for p, (first, last) in (
        (hospital, ("2026-02-25", "2026-02-28")),
        (broken, ("2026-02-26",) * 2),
    ):
        add_entries(app, p, "2026-02-20", "2026-02-24")
        response = factory.as_(coordinator).post(
            f"/api/v1/participants/{p.id}/excused-days",
            json={"from": first, "to": last, "reason": "hospital stay"},
        )
        assert response.status_code == 201
    # hospital: all excused; broken: Feb 25 missed, 26 excused, 27-28 missed.
    assert check(app) == 0


def test_each_participant_has_their_own_yesterday_and_only_active_ones_alert(app, factory, clock):
    clock.set("2026-02-10T10:00:00+08:00")
    gone = factory.participant(enrolled_on=date(2026, 2, 1))
    factory.as_(factory.staff()).patch(
        f"/api/v1/participants/{gone.id}", json={"status": "withdrawn", "reason": "moved away"}
    )
    clock.set(NOW)
    shanghai = factory.participant(enrolled_on=date(2026, 2, 20))
    los_angeles = factory.participant(enrolled_on=date(2026, 2, 20), timezone="America/Los_Angeles")
    add_entries(app, shanghai, "2026-02-20", "2026-02-25")
    add_entries(app, los_angeles, "2026-02-20", "2026-02-25")
    assert check(app) == 1  # Shanghai misses Feb 26-28; LA's yesterday is Feb 27: two days
    [alert] = missed_alerts(factory)
    assert alert.participant_id == shanghai.id


def test_alerts_check_command(app, factory, clock):
    clock.set(NOW)
    p = factory.participant(enrolled_on=date(2026, 2, 20))
    add_entries(app, p, "2026-02-20", "2026-02-24")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["alerts", "check", "--now", "2026-03-01T12:00:00+08:00"])
    assert result.exit_code == 0, result.output
    assert "1 missed-diary alert(s) raised" in result.output
    result = runner.invoke(args=["alerts", "check", "--now", "2026-03-01T12:00:00"])
    assert result.exit_code != 0 and "offset" in result.output


@pytest.fixture
def alerts(app, factory, clock):
    clock.set(NOW)
    coordinator = factory.staff()
    own = factory.participant(enrolled_on=date(2026, 2, 20))
    other = factory.participant(site="LZU1", enrolled_on=date(2026, 2, 20))
    return {
        "coordinator": coordinator,
        "own": own,
        "other": other,
        "symptom": symptom_alert(app, own, "2026-02-27", 3),
        "urgent": symptom_alert(app, own, "2026-02-28", 4),
        "other_site": symptom_alert(app, other, "2026-02-28", 3),
    }


def test_list_is_site_scoped_and_filtered(factory, alerts):
    client = factory.as_(alerts["coordinator"])
    response = client.get("/api/v1/alerts", query_string={"status": "open"})
    assert response.status_code == 200
    assert {a["id"] for a in response.json} == {alerts["symptom"], alerts["urgent"]}
    first = response.json[0]
    assert {"id", "kind", "participant_id", "study_code", "status", "created_at"} <= set(first)
    assert first["study_code"] == alerts["own"].study_code and first["site"] == "BJ302"
    urgent = client.get("/api/v1/alerts", query_string={"kind": "symptom_urgent"}).json
    assert [(a["id"], a["urgent"]) for a in urgent] == [(alerts["urgent"], True)]
    assert client.get("/api/v1/alerts", query_string={"site": "LZU1"}).status_code == 404
    assert client.get(f"/api/v1/alerts/{alerts['other_site']}").status_code == 404
    monitor = factory.as_(factory.staff("monitor", sites=()))
    everything = monitor.get("/api/v1/alerts").json
    assert len(everything) == 3
    lzu = monitor.get("/api/v1/alerts", query_string={"site": "LZU1"}).json
    assert [a["id"] for a in lzu] == [alerts["other_site"]]
    assert client.get("/api/v1/alerts", query_string={"status": "closed"}).status_code == 422


def _ack(factory, who, alert_id, body):
    return factory.as_(who).post(f"/api/v1/alerts/{alert_id}/acknowledge", json=body)


def test_symptom_alert_needs_the_sites_decision(factory, alerts):
    coordinator = alerts["coordinator"]
    bad = [
        ({"note": "called her"}, "decision", 409),
        ({"decision": "not_adverse_event"}, "note", 422),
        ({"note": "x", "decision": "adverse_event_recorded"}, "adverse_event_id", 409),
        (
            {"note": "x", "decision": "not_adverse_event", "adverse_event_id": 1},
            "adverse_event_id",
            409,
        ),
        ({"note": "x", "decision": "maybe"}, "decision", 422),
        ({"note": "x", "decision": "not_adverse_event", "extra": True}, "extra", 422),
    ]
    for body, field, status in bad:
        response = _ack(factory, coordinator, alerts["symptom"], body)
        assert response.status_code == status, body
        assert field in response.json["errors"], response.json
    response = _ack(
        factory,
        coordinator,
        alerts["symptom"],
        {"note": "Called: ascites known, stable.", "decision": "not_adverse_event"},
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["status"], body["decision"], body["acknowledged_by_staff_id"]) == (
        "acknowledged",
        "not_adverse_event",
        coordinator.id,
    )
    again = _ack(
        factory, coordinator, alerts["symptom"], {"note": "again", "decision": "not_adverse_event"}
    )
    assert again.status_code == 409 and again.json["error"] == "alert_already_acknowledged"
    audit = factory.scalar(select(AuditEvent).where(AuditEvent.action == "alert.acknowledged"))
    assert audit.before["status"] == "open" and audit.after["status"] == "acknowledged"
    assert audit.reason == "Called: ascites known, stable."


def test_decision_links_the_adverse_event_of_that_participant(factory, alerts):
    coordinator = alerts["coordinator"]
    client = factory.as_(coordinator)
    ae_body = {
        "term": "Ascites",
        "onset_date": "2026-02-28",
        "grade": 3,
        "relation_to_infusion": "unlikely",
        "outcome": "recovering",
    }
    own_ae = client.post(f"/api/v1/participants/{alerts['own'].id}/adverse-events", json=ae_body)
    assert own_ae.status_code == 201, own_ae.json
    other_ae = factory.as_(factory.staff(sites=("LZU1",))).post(
        f"/api/v1/participants/{alerts['other'].id}/adverse-events", json=ae_body
    )
    body = {"note": "Recorded as AE", "decision": "adverse_event_recorded"}
    response = _ack(
        factory, coordinator, alerts["urgent"], {**body, "adverse_event_id": other_ae.json["id"]}
    )
    assert response.status_code == 409 and "adverse_event_id" in response.json["errors"]
    assert response.json["error"] == "unknown_adverse_event"
    response = _ack(
        factory, coordinator, alerts["urgent"], {**body, "adverse_event_id": own_ae.json["id"]}
    )
    assert response.status_code == 200
    assert response.json["adverse_event_id"] == own_ae.json["id"]


def test_missed_diary_alert_takes_no_decision(app, factory, alerts):
    quiet = factory.participant(enrolled_on=date(2026, 2, 20))
    add_entries(app, quiet, "2026-02-20", "2026-02-24")
    check(app)
    alert_id = factory.scalar(
        select(Alert.id).where(Alert.kind == "missed_diary", Alert.participant_id == quiet.id)
    )
    coordinator = alerts["coordinator"]
    response = _ack(factory, coordinator, alert_id, {"note": "x", "decision": "not_adverse_event"})
    assert response.status_code == 409 and "decision" in response.json["errors"]
    response = _ack(factory, coordinator, alert_id, {"note": "Phone broken; paper diary."})
    assert response.status_code == 200 and response.json["decision"] is None


def test_acknowledge_by_the_wrong_people(factory, alerts):
    body = {"note": "seen", "decision": "not_adverse_event"}
    for role in ("monitor", "admin"):
        who = factory.staff(role, sites=())
        assert _ack(factory, who, alerts["symptom"], body).status_code == 403
    assert _ack(factory, alerts["own"], alerts["symptom"], body).status_code == 403
    assert _ack(factory, alerts["coordinator"], alerts["other_site"], body).status_code == 404
    assert _ack(factory, alerts["coordinator"], 999999, body).status_code == 404
    assert (
        factory.scalar(select(func.count()).select_from(Alert).where(Alert.status == "open")) == 3
    )


def test_concurrent_acknowledgements_one_wins(app, factory, alerts):
    token = factory.token(alerts["coordinator"])
    statuses = []

    def acknowledge():
        response = app.test_client().post(
            f"/api/v1/alerts/{alerts['symptom']}/acknowledge",
            json={"note": "seen", "decision": "not_adverse_event"},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=acknowledge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    audits = factory.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "alert.acknowledged")
    )
    assert audits == 1


def test_concurrent_checks_raise_each_alert_once(app, factory, clock):
    """Several worker processes may run the check at once: the dedupe key settles it."""
    clock.set(NOW)
    people = [factory.participant(enrolled_on=date(2026, 2, 20)) for _ in range(3)]
    for p in people:
        add_entries(app, p, "2026-02-20", "2026-02-23")
    counts = []

    def run():
        counts.append(check(app))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 3
    assert len(missed_alerts(factory)) == 3


def test_an_alert_page_past_any_row_is_empty_not_an_error(factory):
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).get("/api/v1/alerts", query_string={"page": 10**30})
    assert response.status_code == 200
    assert response.json == []
