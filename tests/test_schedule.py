"""The protocol schedule: month-end clamping, windows, withdrawal, changes by the site."""

from __future__ import annotations

import dataclasses
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from api.models import AuditEvent, ScheduleEvent


def _events(factory, participant, who=None):
    who = who or factory.staff("monitor", sites=())
    response = factory.as_(who).get(f"/api/v1/participants/{participant.id}/schedule")
    assert response.status_code == 200, response.json
    return {(e["kind"], e["number"]): e for e in response.json}


def test_jan_31_enrolment_clamps_to_month_end(factory, clock):
    clock.set("2026-01-31T10:00:00+08:00")
    p = factory.participant(arm="msc", enrolled_on=date(2026, 1, 31))
    events = _events(factory, p)
    assert len(events) == 4 + 5 + 4
    targets = {key: e["target_date"] for key, e in events.items()}
    assert [targets[("infusion", n)] for n in (1, 2, 3, 4)] == [
        "2026-01-31",
        "2026-04-30",
        "2026-07-31",
        "2026-10-31",
    ]
    assert targets[("lab_visit", 5)] == "2027-01-31"
    assert [targets[("follow_up", n)] for n in (1, 2, 3, 4)] == [
        "2027-07-31",
        "2028-01-31",
        "2028-07-31",
        "2029-01-31",
    ]
    april = events[("infusion", 2)]
    assert (april["window_start"], april["window_end"]) == ("2026-04-23", "2026-05-07")
    assert april["status"] == "scheduled" and april["actual_date"] is None
    assert {"id", "kind", "number", "target_date", "window_start", "window_end"} <= set(april)


def test_feb_29_enrolment_in_the_control_arm(factory, clock):
    clock.set("2028-02-29T10:00:00+08:00")
    p = factory.participant(arm="control", enrolled_on=date(2028, 2, 29))
    events = _events(factory, p)
    assert not [k for k in events if k[0] == "infusion"]
    targets = {key: e["target_date"] for key, e in events.items()}
    assert [targets[("lab_visit", n)] for n in (1, 2, 3, 4, 5)] == [
        "2028-02-29",
        "2028-05-29",
        "2028-08-29",
        "2028-11-29",
        "2029-02-28",
    ]
    assert [targets[("follow_up", n)] for n in (1, 2, 3, 4)] == [
        "2029-08-29",
        "2030-02-28",
        "2030-08-29",
        "2031-02-28",
    ]


def test_withdrawal_mid_schedule_ends_future_events_only(factory, clock):
    clock.set("2026-01-05T10:00:00+08:00")
    coordinator = factory.staff()
    p = factory.participant(arm="msc", enrolled_on=date(2026, 1, 5))
    client = factory.as_(coordinator)
    first = _events(factory, p)[("infusion", 1)]
    client.patch(
        f"/api/v1/participants/{p.id}/schedule/{first['id']}", json={"actual_date": "2026-01-05"}
    )
    clock.set("2026-05-01T10:00:00+08:00")
    client = factory.as_(coordinator)  # a fresh token at the new instant
    response = client.patch(
        f"/api/v1/participants/{p.id}", json={"status": "withdrawn", "reason": "consent withdrawn"}
    )
    assert response.status_code == 200
    events = _events(factory, p)
    assert events[("infusion", 1)]["status"] == "completed"
    assert events[("infusion", 2)]["status"] == "scheduled"  # Apr 5: past, left for the site
    assert events[("infusion", 3)]["status"] == "cancelled"  # Jul 5
    assert all(e["status"] == "cancelled" for k, e in events.items() if k[0] == "follow_up")
    # A cancelled event cannot be changed; the past one can still be recorded as missed.
    cancelled = events[("infusion", 3)]
    response = client.patch(
        f"/api/v1/participants/{p.id}/schedule/{cancelled['id']}",
        json={"actual_date": "2026-04-30"},
    )
    assert response.status_code == 409
    assert response.json["error"] == "schedule_event_cancelled"
    past = events[("infusion", 2)]
    response = client.patch(
        f"/api/v1/participants/{p.id}/schedule/{past['id']}",
        json={"status": "missed", "reason": "participant did not come"},
    )
    assert response.status_code == 200 and response.json["status"] == "missed"
    response = client.patch(
        f"/api/v1/participants/{p.id}/schedule/{past['id']}",
        json={"target_date": "2026-05-10", "reason": "new date"},
    )
    assert response.status_code == 409


@pytest.fixture
def enrolled(factory, clock):
    clock.set("2026-03-01T10:00:00+08:00")
    coordinator = factory.staff()
    p = factory.participant(arm="msc", enrolled_on=date(2026, 2, 1))
    event = _events(factory, p)[("infusion", 2)]  # May 1, window Apr 24 - May 8
    return p, coordinator, event


def test_reschedule_inside_and_outside_the_window(factory, enrolled):
    p, coordinator, event = enrolled
    client = factory.as_(coordinator)
    url = f"/api/v1/participants/{p.id}/schedule/{event['id']}"
    response = client.patch(url, json={"target_date": "2026-05-06", "reason": "holiday week"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["target_date"], body["out_of_window"], body["status"]) == (
        "2026-05-06",
        False,
        "scheduled",
    )
    assert (body["window_start"], body["window_end"]) == ("2026-04-24", "2026-05-08")
    response = client.patch(url, json={"target_date": "2026-05-20", "reason": "cell batch late"})
    assert response.json["out_of_window"] is True and response.json["version"] == 3
    audits = factory.scalars(
        select(AuditEvent)
        .where(AuditEvent.entity_type == "schedule_event", AuditEvent.entity_id == event["id"])
        .order_by(AuditEvent.id)
    )
    assert [(a.before["target_date"], a.after["target_date"]) for a in audits] == [
        ("2026-05-01", "2026-05-06"),
        ("2026-05-06", "2026-05-20"),
    ]
    assert audits[1].reason == "cell batch late" and audits[1].actor_id == coordinator.id


def test_record_actual_date_and_missed(factory, enrolled, clock):
    p, coordinator, _ = enrolled
    client = factory.as_(coordinator)
    first = _events(factory, p)[("infusion", 1)]
    url = f"/api/v1/participants/{p.id}/schedule/{first['id']}"
    response = client.patch(url, json={"actual_date": "2026-02-03"})
    assert response.status_code == 200
    assert (response.json["status"], response.json["actual_date"]) == ("completed", "2026-02-03")
    assert response.json["out_of_window"] is False
    # Replaying the same change changes nothing and audits nothing more.
    again = client.patch(url, json={"actual_date": "2026-02-03"})
    assert again.status_code == 200 and again.json["version"] == response.json["version"]
    response = client.patch(url, json={"status": "missed", "reason": "entered by mistake"})
    assert response.status_code == 409 and response.json["error"] == "event_completed"
    lab = _events(factory, p)[("lab_visit", 1)]
    response = client.patch(
        f"/api/v1/participants/{p.id}/schedule/{lab['id']}",
        json={"status": "missed", "reason": "in hospital elsewhere"},
    )
    assert response.json["status"] == "missed"


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"target_date": "2026-05-06"}, "reason", 409),
        ({"target_date": "2026-02-27", "reason": "too late now"}, "target_date", 409),
        ({"actual_date": "2026-03-02"}, "actual_date", 409),
        ({"actual_date": "2026-01-31"}, "actual_date", 409),
        ({"status": "missed"}, "reason", 409),
        ({"status": "completed"}, "actual_date", 409),
        ({"status": "cancelled", "reason": "nope"}, "status", 422),
        (
            {"target_date": "2026-05-06", "actual_date": "2026-02-27", "reason": "x y z"},
            "target_date",
            409,
        ),
        ({"target_date": "not a date", "reason": "holiday"}, "target_date", 422),
        ({"window_start": "2026-05-01"}, "window_start", 422),
    ],
)
def test_bad_changes_are_refused_and_write_nothing(factory, enrolled, body, field, status):
    """422 for what the schema refuses, 409 with the rule's code for what a rule refuses."""
    p, coordinator, event = enrolled
    response = factory.as_(coordinator).patch(
        f"/api/v1/participants/{p.id}/schedule/{event['id']}", json=body
    )
    assert response.status_code == status, response.json
    assert field in response.json["errors"], response.json
    assert factory.scalar(select(ScheduleEvent.version).where(ScheduleEvent.id == event["id"])) == 1
    assert (
        factory.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.entity_type == "schedule_event")
        )
        == 0
    )


def test_schedule_changes_by_the_wrong_people(factory, enrolled):
    p, _, event = enrolled
    url = f"/api/v1/participants/{p.id}/schedule/{event['id']}"
    body = {"target_date": "2026-05-06", "reason": "holiday week"}
    for role in ("monitor", "admin"):
        assert factory.as_(factory.staff(role, sites=())).patch(url, json=body).status_code == 403
    assert factory.as_(p).patch(url, json=body).status_code == 403
    other = factory.staff("coordinator", sites=("LZU1",))
    assert factory.as_(other).patch(url, json=body).status_code == 404
    assert factory.as_(other).get(f"/api/v1/participants/{p.id}/schedule").status_code == 404
    someone_else = factory.participant(enrolled_on=date(2026, 2, 1))
    response = factory.as_(factory.staff()).patch(
        f"/api/v1/participants/{someone_else.id}/schedule/{event['id']}", json=body
    )
    assert response.status_code == 404


def test_concurrent_reschedules_are_serialised_and_both_audited(app, factory, enrolled):
    p, coordinator, event = enrolled
    token = factory.token(coordinator)
    url = f"/api/v1/participants/{p.id}/schedule/{event['id']}"
    statuses = []

    def move(day):
        response = app.test_client().patch(
            url,
            json={"target_date": day, "reason": "agreed by phone"},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=move, args=(d,)) for d in ("2026-05-04", "2026-05-05")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    assert factory.scalar(select(ScheduleEvent.version).where(ScheduleEvent.id == event["id"])) == 3
    audits = factory.scalars(
        select(AuditEvent).where(AuditEvent.entity_id == event["id"]).order_by(AuditEvent.id)
    )
    assert len(audits) == 2
    # Each change saw the other's result: no lost update.
    assert audits[1].before["target_date"] == audits[0].after["target_date"]


def test_me_schedule_lists_my_upcoming_events(factory, enrolled, clock):
    p, coordinator, _ = enrolled
    upcoming = factory.as_(p).get("/api/v1/me/schedule")
    assert upcoming.status_code == 200
    # Enrolled Feb 1, today Mar 1: the month-0 events are past their windows.
    assert [(e["kind"], e["number"]) for e in upcoming.json][:2] == [
        ("infusion", 2),
        ("lab_visit", 2),
    ]
    assert all(e["target_date"] >= "2026-03-01" for e in upcoming.json)
    assert factory.as_(coordinator).get("/api/v1/me/schedule").status_code == 403


def test_changing_the_study_configuration_never_rewrites_past_events(app, factory, enrolled):
    p, _, _ = enrolled
    before = _events(factory, p)
    original = app.extensions["study"]
    plans = tuple(dataclasses.replace(plan, months=(0, 1)) for plan in original.events)
    app.extensions["study"] = dataclasses.replace(original, events=plans, visit_window_days=3)
    try:
        newer = factory.participant(enrolled_on=date(2026, 2, 1))
    finally:
        app.extensions["study"] = original
    assert _events(factory, p) == before
    new_events = _events(factory, newer)
    assert len(new_events) == 6
    assert new_events[("lab_visit", 2)]["window_start"] == "2026-02-26"


def test_a_reason_alone_changes_nothing(factory, enrolled):
    p, coordinator, event = enrolled
    response = factory.as_(coordinator).patch(
        f"/api/v1/participants/{p.id}/schedule/{event['id']}", json={"reason": "just a note"}
    )
    assert response.status_code == 200
    assert (response.json["version"], response.json["reason"]) == (1, None)
