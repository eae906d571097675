"""Adverse events: seriousness, the 24-hour reporting clock, urgent alerts, audit."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from api.models import AdverseEvent, Alert, AuditEvent
from tests.diary_rows import add_entry

NOW = "2026-03-01T12:00:00+08:00"
AE = {
    "term": "Hepatic encephalopathy",
    "onset_date": "2026-02-27",
    "grade": 2,
    "relation_to_infusion": "unlikely",
    "outcome": "recovering",
}


@pytest.fixture
def site(factory, clock):
    clock.set(NOW)
    return {
        "coordinator": factory.staff(),
        "p": factory.participant(enrolled_on=date(2026, 2, 1)),
    }


def _url(p, ae_id=None):
    base = f"/api/v1/participants/{p.id}/adverse-events"
    return base if ae_id is None else f"{base}/{ae_id}"


def test_non_serious_event(factory, site):
    client = factory.as_(site["coordinator"])
    response = client.post(_url(site["p"]), json=AE)
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["serious"], body["seriousness"], body["report_deadline"], body["overdue"]) == (
        False,
        [],
        None,
        False,
    )
    assert factory.scalar(select(func.count()).select_from(Alert)) == 0
    audit = factory.scalar(select(AuditEvent).where(AuditEvent.action == "adverse_event.created"))
    assert audit.after["term"] == AE["term"] and audit.actor_id == site["coordinator"].id
    listed = factory.as_(factory.staff("monitor", sites=())).get(_url(site["p"])).json
    assert [e["id"] for e in listed] == [body["id"]]


def test_serious_event_starts_the_24_hour_clock_and_raises_an_urgent_alert(factory, site, clock):
    client = factory.as_(site["coordinator"])
    body = {**AE, "term": "Hepatocellular carcinoma", "grade": 4, "seriousness": ["tumour"]}
    response = client.post(_url(site["p"]), json=body)
    assert response.status_code == 201, response.json
    ae = response.json
    assert ae["serious"] is True
    assert ae["awareness_at"] == "2026-03-01T04:00:00+00:00"
    assert ae["report_deadline"] == "2026-03-02T04:00:00+00:00"
    assert ae["overdue"] is False
    alert = factory.scalar(select(Alert).where(Alert.kind == "serious_adverse_event"))
    assert alert.adverse_event_id == ae["id"] and alert.status == "open"
    listed = client.get("/api/v1/alerts", query_string={"kind": "serious_adverse_event"}).json
    assert listed[0]["urgent"] is True

    clock.set("2026-03-02T12:00:01+08:00")  # 24 h and a second later
    client = factory.as_(site["coordinator"])
    assert client.get(_url(site["p"], ae["id"])).json["overdue"] is True
    response = client.patch(
        _url(site["p"], ae["id"]),
        json={"reported_at": "2026-03-02T12:00:00+08:00", "reason": "reported to sponsor late"},
    )
    assert response.status_code == 200, response.json
    assert response.json["overdue"] is False and response.json["version"] == 2


def test_amending_into_serious_raises_the_alert_once(factory, site):
    client = factory.as_(site["coordinator"])
    ae = client.post(_url(site["p"]), json=AE).json
    response = client.patch(
        _url(site["p"], ae["id"]),
        json={"seriousness": ["life_threatening"], "grade": 4, "reason": "worsened overnight"},
    )
    assert response.status_code == 200, response.json
    assert response.json["serious"] is True and response.json["awareness_at"]
    client.patch(
        _url(site["p"], ae["id"]),
        json={"seriousness": ["life_threatening", "fatal"], "reason": "participant died"},
    )
    alerts = factory.scalars(select(Alert).where(Alert.adverse_event_id == ae["id"]))
    assert len(alerts) == 1
    audits = factory.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "adverse_event.amended")
        .order_by(AuditEvent.id)
    )
    assert [a.reason for a in audits] == ["worsened overnight", "participant died"]
    assert audits[0].before["grade"] == 2 and audits[0].after["grade"] == 4
    assert audits[1].after["seriousness"] == ["fatal", "life_threatening"]


def test_the_prompting_diary_entry_must_be_the_participants(app, factory, site):
    entry = add_entry(app, site["p"], "2026-02-27", grade=3)
    other = factory.participant(enrolled_on=date(2026, 2, 1))
    other_entry = add_entry(app, other, "2026-02-27", grade=3)
    client = factory.as_(site["coordinator"])
    response = client.post(_url(site["p"]), json={**AE, "diary_entry_id": other_entry})
    assert response.status_code == 409 and "diary_entry_id" in response.json["errors"]
    response = client.post(_url(site["p"]), json={**AE, "diary_entry_id": entry})
    assert response.status_code == 201 and response.json["diary_entry_id"] == entry


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"grade": 5}, "grade", 422),
        ({"grade": -1}, "grade", 422),
        ({"seriousness": ["embarrassing"]}, "seriousness", 422),
        ({"onset_date": "2026-03-02"}, "onset_date", 409),
        ({"onset_date": "2026-01-31"}, "onset_date", 409),
        ({"relation_to_infusion": "who knows"}, "relation_to_infusion", 422),
        ({"outcome": None}, "outcome", 422),
        ({"term": ""}, "term", 422),
        ({"awareness_at": "2026-03-05T10:00:00+08:00"}, "awareness_at", 409),
        ({"awareness_at": "2026-03-01T10:00:00"}, "awareness_at", 422),
        (
            {
                "awareness_at": "2026-03-01T10:00:00+08:00",
                "reported_at": "2026-03-01T09:00:00+08:00",
            },
            "reported_at",
            409,
        ),
        ({"serious": True}, "serious", 422),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(factory, site, change, field, status):
    """422 for what the schema refuses, 409 with the rule's code for what a rule refuses."""
    response = factory.as_(site["coordinator"]).post(_url(site["p"]), json={**AE, **change})
    assert response.status_code == status, response.json
    assert field in response.json["errors"], response.json
    assert factory.scalar(select(func.count()).select_from(AdverseEvent)) == 0
    audits = select(func.count()).select_from(AuditEvent)
    assert factory.scalar(audits.where(AuditEvent.entity_type == "adverse_event")) == 0


def test_amendment_needs_a_reason(factory, site):
    client = factory.as_(site["coordinator"])
    ae = client.post(_url(site["p"]), json=AE).json
    response = client.patch(_url(site["p"], ae["id"]), json={"grade": 3})
    assert response.status_code == 422 and "reason" in response.json["errors"]
    response = client.patch(_url(site["p"], ae["id"]), json={"reason": "nothing to say"})
    assert response.status_code == 200 and response.json["version"] == 1  # nothing changed


def test_adverse_events_by_the_wrong_people(factory, site):
    p = site["p"]
    ae = factory.as_(site["coordinator"]).post(_url(p), json=AE).json
    for role in ("monitor", "admin"):
        who = factory.as_(factory.staff(role, sites=()))
        assert who.post(_url(p), json=AE).status_code == 403
        assert (
            who.patch(_url(p, ae["id"]), json={"grade": 3, "reason": "typo fix"}).status_code == 403
        )
        assert who.get(_url(p, ae["id"])).status_code == 200
    assert factory.as_(p).post(_url(p), json=AE).status_code == 403
    other = factory.as_(factory.staff(sites=("LZU1",)))
    assert other.post(_url(p), json=AE).status_code == 404
    assert other.get(_url(p)).status_code == 404
    assert (
        other.patch(_url(p, ae["id"]), json={"grade": 3, "reason": "typo fix"}).status_code == 404
    )
    someone = factory.participant(enrolled_on=date(2026, 2, 1))
    response = factory.as_(site["coordinator"]).get(_url(someone, ae["id"]))
    assert response.status_code == 404 and response.json["error"] == "adverse_event_not_found"


def test_concurrent_amendments_are_serialised(app, factory, site):
    ae = factory.as_(site["coordinator"]).post(_url(site["p"]), json=AE).json
    token = factory.token(site["coordinator"])
    statuses = []

    def amend(grade):
        response = app.test_client().patch(
            _url(site["p"], ae["id"]),
            json={"grade": grade, "reason": "graded again"},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=amend, args=(g,)) for g in (3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    assert factory.scalar(select(AdverseEvent.version)) == 3
    audits = factory.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "adverse_event.amended")
        .order_by(AuditEvent.id)
    )
    assert audits[1].before["grade"] == audits[0].after["grade"]
