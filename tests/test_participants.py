"""Enrolment, listing, status and profile changes, with their audit rows."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from api.models import ActivationCode, AuditEvent, Participant, ScheduleEvent

URL = "/api/v1/participants"


def enrol_body(**overrides):
    body = {
        "site": "BJ302",
        "arm": "msc",
        "enrolled_on": "2026-01-31",
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
    }
    body.update(overrides)
    return body


def count(factory, model, *where):
    return factory.scalar(select(func.count()).select_from(model).where(*where))


def test_enrolment_answers_study_code_and_one_time_code(factory):
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    response = factory.as_(coordinator).post(URL, json=enrol_body())
    assert response.status_code == 201
    body = response.json
    assert body["study_code"] == "BJ302-0001"
    assert body["site"] == "BJ302"
    assert body["status"] == "active"
    assert body["reminder_time"] == "09:00"
    assert body["diary_reminder_time"] == "20:00"
    assert len(body["activation_code"]) == 14  # XXXX-XXXX-XXXX
    second = factory.as_(coordinator).post(URL, json=enrol_body(arm="control"))
    assert second.json["study_code"] == "BJ302-0002"
    # The code is stored only as a hash; the plain code appears nowhere in the database.
    hashes = factory.scalars(select(ActivationCode.code_hash))
    assert body["activation_code"] not in hashes
    assert all(len(h) == 64 for h in hashes)
    # Reading the participant never shows a code again.
    read = factory.as_(coordinator).get(f"{URL}/{body['id']}").json
    assert "activation_code" not in read


def test_enrolment_creates_the_protocol_schedule(factory):
    coordinator = factory.staff()
    msc = factory.as_(coordinator).post(URL, json=enrol_body()).json
    control = factory.as_(coordinator).post(URL, json=enrol_body(arm="control")).json
    assert count(factory, ScheduleEvent, ScheduleEvent.participant_id == msc["id"]) == 13
    assert count(factory, ScheduleEvent, ScheduleEvent.participant_id == control["id"]) == 9
    # Jan 31 + 1 month clamps to month end; +3 months is Apr 30.
    targets = factory.scalars(
        select(ScheduleEvent.target_date).where(
            ScheduleEvent.participant_id == msc["id"], ScheduleEvent.kind == "infusion"
        )
    )
    assert sorted(targets) == [
        date(2026, 1, 31),
        date(2026, 4, 30),
        date(2026, 7, 31),
        date(2026, 10, 31),
    ]


def test_enrolment_is_audited(factory):
    coordinator = factory.staff()
    body = factory.as_(coordinator).post(URL, json=enrol_body()).json
    event = factory.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "participant.enrolled", AuditEvent.entity_id == body["id"]
        )
    )
    assert event.actor_type == "staff" and event.actor_id == coordinator.id
    assert event.after["study_code"] == "BJ302-0001"
    assert event.participant_id == body["id"]


def test_bad_enrolment_names_the_field_and_writes_nothing(factory):
    coordinator = factory.staff()
    client = factory.as_(coordinator)
    cases = [
        (enrol_body(arm="placebo"), "arm"),
        (enrol_body(timezone="Mars/Olympus"), "timezone"),
        (enrol_body(locale="fr"), "locale"),
        (enrol_body(enrolled_on="2026-02-30"), "enrolled_on"),
        (enrol_body(name="Zhang San"), "name"),
        (enrol_body(reminder_time="25:00"), "reminder_time"),
        ({k: v for k, v in enrol_body().items() if k != "site"}, "site"),
    ]
    for body, field in cases:
        response = client.post(URL, json=body)
        assert response.status_code == 422, (field, response.json)
        assert field in response.json["errors"], (field, response.json)
        assert response.json["error"] == "validation_failed"
    assert count(factory, Participant) == 0
    assert count(factory, AuditEvent) == 0


def test_enrolment_in_the_future_is_refused_by_rule_and_writes_nothing(factory):
    coordinator = factory.staff()
    response = factory.as_(coordinator).post(URL, json=enrol_body(enrolled_on="2099-01-01"))
    assert response.status_code == 409
    assert response.json["error"] == "enrolled_on_in_future"
    assert "enrolled_on" in response.json["errors"]
    assert count(factory, Participant) == 0


def test_enrolling_at_another_site_is_404(factory):
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    response = factory.as_(coordinator).post(URL, json=enrol_body(site="LZU1"))
    assert response.status_code == 404
    unknown = factory.as_(coordinator).post(URL, json=enrol_body(site="NOPE"))
    assert unknown.status_code == 404
    assert count(factory, Participant) == 0


def test_concurrent_enrolments_get_distinct_study_codes(app, factory):
    coordinator = factory.staff()
    token = factory.token(coordinator)
    codes: list[str] = []
    barrier = threading.Barrier(8)

    def enrol() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(URL, json=enrol_body(), headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.json
        codes.append(response.json["study_code"])

    threads = [threading.Thread(target=enrol) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [f"BJ302-{n:04d}" for n in range(1, 9)]


def test_listing_is_site_scoped_and_paginated(factory):
    own = [factory.participant(site="BJ302") for _ in range(3)]
    factory.participant(site="LZU1")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    response = factory.as_(coordinator).get(URL, query_string={"page_size": 2})
    assert response.status_code == 200
    assert [p["id"] for p in response.json] == [own[0].id, own[1].id]
    assert '"total": 3' in response.headers["X-Pagination"]
    monitor = factory.staff("monitor", sites=())
    assert len(factory.as_(monitor).get(URL).json) == 4
    by_site = factory.as_(monitor).get(URL, query_string={"site": "LZU1"}).json
    assert [p["site"] for p in by_site] == ["LZU1"]


def test_other_sites_participants_are_404_not_403(factory):
    other = factory.participant(site="LZU1")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    client = factory.as_(coordinator)
    assert client.get(f"{URL}/{other.id}").status_code == 404
    assert client.get(f"{URL}/999999").status_code == 404
    patch = client.patch(f"{URL}/{other.id}", json={"locale": "en"})
    assert patch.status_code == 404


def test_a_coordinator_of_several_sites_sees_each(factory):
    a = factory.participant(site="BJ302")
    b = factory.participant(site="TJSH")
    coordinator = factory.staff("coordinator", sites=("BJ302", "TJSH"))
    client = factory.as_(coordinator)
    assert client.get(f"{URL}/{a.id}").status_code == 200
    assert client.get(f"{URL}/{b.id}").status_code == 200
    assert {s["code"] for s in client.get("/api/v1/sites").json} == {"BJ302", "TJSH"}


def test_withdrawal_needs_a_reason_is_audited_and_ends_future_events(factory, clock):
    clock.set("2026-03-10T10:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 1, 5))
    coordinator = factory.staff()
    client = factory.as_(coordinator)
    no_reason = client.patch(f"{URL}/{participant.id}", json={"status": "withdrawn"})
    assert no_reason.status_code == 409 and no_reason.json["error"] == "reason_required"
    assert "reason" in no_reason.json["errors"]
    response = client.patch(
        f"{URL}/{participant.id}", json={"status": "withdrawn", "reason": "moved abroad"}
    )
    assert response.status_code == 200
    assert response.json["status"] == "withdrawn"
    assert response.json["status_reason"] == "moved abroad"
    statuses = {
        (e.kind, e.number): e.status
        for e in factory.scalars(
            select(ScheduleEvent).where(ScheduleEvent.participant_id == participant.id)
        )
    }
    assert statuses[("infusion", 1)] == "scheduled"  # month 0, already past
    assert statuses[("infusion", 2)] == "cancelled"  # month 3, future
    assert statuses[("follow_up", 4)] == "cancelled"
    audit = factory.scalar(
        select(AuditEvent).where(AuditEvent.action == "participant.status_changed")
    )
    assert audit.before["status"] == "active" and audit.after["status"] == "withdrawn"
    assert audit.reason == "moved abroad" and audit.actor_id == coordinator.id
    again = client.patch(
        f"{URL}/{participant.id}", json={"status": "active", "reason": "changed mind"}
    )
    assert again.status_code == 409 and again.json["error"] == "status_final"


def test_monitor_reads_but_never_writes(factory):
    participant = factory.participant()
    monitor = factory.staff("monitor", sites=())
    client = factory.as_(monitor)
    assert client.get(f"{URL}/{participant.id}").status_code == 200
    assert client.patch(f"{URL}/{participant.id}", json={"locale": "en"}).status_code == 403
    assert client.post(URL, json=enrol_body()).status_code == 403


def test_participant_reads_and_changes_own_profile(factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    me = phone.get("/api/v1/me")
    assert me.status_code == 200 and me.json["study_code"] == participant.study_code
    changed = phone.patch(
        "/api/v1/me", json={"timezone": "Europe/Berlin", "diary_reminder_time": "21:30"}
    )
    assert changed.status_code == 200
    assert changed.json["timezone"] == "Europe/Berlin"
    assert changed.json["diary_reminder_time"] == "21:30"
    audit = factory.scalar(select(AuditEvent).where(AuditEvent.action == "participant.updated"))
    assert audit.actor_type == "participant" and audit.before["timezone"] == "Asia/Shanghai"


def test_participant_cannot_change_site_arm_status_or_code(factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    for field, value in [
        ("site", "LZU1"),
        ("arm", "control"),
        ("status", "withdrawn"),
        ("study_code", "X"),
        ("enrolled_on", "2020-01-01"),
    ]:
        response = phone.patch("/api/v1/me", json={field: value})
        assert response.status_code == 422, field
        assert field in response.json["errors"]
    me = phone.get("/api/v1/me").json
    assert (me["site"], me["arm"], me["status"]) == ("BJ302", "msc", "active")


def test_participant_token_is_refused_on_staff_routes(factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    assert phone.get(URL).status_code == 403
    assert phone.get(f"{URL}/{participant.id}").status_code == 403
    assert phone.get("/api/v1/sites").status_code == 403


def test_empty_patch_changes_nothing(factory):
    participant = factory.participant()
    coordinator = factory.staff()
    response = factory.as_(coordinator).patch(f"{URL}/{participant.id}", json={})
    assert response.status_code == 200
    assert response.json["locale"] == participant.locale
    assert count(factory, AuditEvent, AuditEvent.action == "participant.updated") == 0


def test_a_page_beyond_any_row_is_empty_not_an_error(factory):
    factory.participant()
    admin = factory.staff("admin", sites=())
    response = factory.as_(admin).get(URL, query_string={"page": 10**30, "page_size": 100})
    assert response.status_code == 200
    assert response.json == []


def test_no_activation_code_for_a_participant_who_left(factory):
    participant = factory.participant()
    coordinator = factory.staff()
    client = factory.as_(coordinator)
    client.patch(f"{URL}/{participant.id}", json={"status": "completed", "reason": "month 36"})
    response = client.post(f"{URL}/{participant.id}/activation-code", json={})
    assert response.status_code == 409
    assert response.json["error"] == "participant_inactive"
