"""`/me/devices`, `/me/notifications` and the staff view of a participant's reminders."""

from __future__ import annotations

import threading
from datetime import date

from sqlalchemy import func, select

from api.models import AuditEvent, Device, Reminder
from notifications.worker import Worker
from tests.reminders.conftest import add_device

DEVICES = "/api/v1/me/devices"
NOTIFICATIONS = "/api/v1/me/notifications"
TOKEN = "fcm-registration-token-" + "x" * 140


def enrol(factory, clock, **extra):
    clock.set("2026-01-06T10:00:00+08:00")
    return factory.participant(arm="msc", enrolled_on=date(2026, 1, 5), **extra)


def device_rows(factory) -> list[Device]:
    return factory.scalars(select(Device).order_by(Device.id))


def test_register_a_device_then_again_idempotently(factory, clock):
    p = enrol(factory, clock)
    phone = factory.as_(p)
    body = {"token": TOKEN, "platform": "android", "app_version": "1.2.0", "locale": "zh-CN"}
    first = phone.post(DEVICES, json=body)
    assert first.status_code == 201, first.json
    assert {k: first.json[k] for k in ("token", "platform", "app_version", "active")} == {
        "token": TOKEN,
        "platform": "android",
        "app_version": "1.2.0",
        "active": True,
    }
    again = phone.post(DEVICES, json={**body, "app_version": "1.3.0"})
    assert again.status_code == 200
    assert again.json["id"] == first.json["id"] and again.json["app_version"] == "1.3.0"
    assert len(device_rows(factory)) == 1
    listed = phone.get(DEVICES)
    assert [d["id"] for d in listed.json] == [first.json["id"]]


def test_a_participant_may_have_several_phones(factory, clock):
    p = enrol(factory, clock)
    phone = factory.as_(p)
    for n, platform in enumerate(("android", "ios")):
        assert phone.post(DEVICES, json={"token": f"t{n}", "platform": platform}).status_code == 201
    assert sorted(d.platform for d in device_rows(factory)) == ["android", "ios"]


def test_a_token_registered_by_someone_else_moves_to_them(factory, clock):
    first, second = enrol(factory, clock), enrol(factory, clock)
    made = factory.as_(first).post(DEVICES, json={"token": TOKEN, "platform": "ios"})
    moved = factory.as_(second).post(DEVICES, json={"token": TOKEN, "platform": "ios"})
    assert moved.status_code == 200 and moved.json["id"] == made.json["id"]
    (device,) = device_rows(factory)
    assert device.participant_id == second.id
    assert factory.as_(first).get(DEVICES).json == []
    actions = factory.scalars(select(AuditEvent.action).where(AuditEvent.entity_type == "device"))
    assert actions == ["device.registered", "device.moved"]


def test_drop_a_device_deactivates_it_and_registering_wakes_it(factory, clock):
    p = enrol(factory, clock)
    phone = factory.as_(p)
    made = phone.post(DEVICES, json={"token": TOKEN, "platform": "android"}).json
    assert phone.delete(f"{DEVICES}/{made['id']}").status_code == 204
    assert phone.delete(f"{DEVICES}/{made['id']}").status_code == 204  # again: fine
    (device,) = device_rows(factory)
    assert (device.active, device.deactivated_reason) == (False, "removed_by_participant")
    woken = phone.post(DEVICES, json={"token": TOKEN, "platform": "android"})
    assert woken.status_code == 200 and woken.json["active"] is True


def test_another_participants_device_is_404(factory, clock):
    owner, other = enrol(factory, clock), enrol(factory, clock)
    made = factory.as_(owner).post(DEVICES, json={"token": TOKEN, "platform": "android"}).json
    response = factory.as_(other).delete(f"{DEVICES}/{made['id']}")
    assert response.status_code == 404 and response.json["error"] == "device_not_found"
    assert device_rows(factory)[0].active is True


def test_staff_cannot_register_devices(factory, clock):
    coordinator = factory.staff("coordinator")
    response = factory.as_(coordinator).post(DEVICES, json={"token": TOKEN, "platform": "ios"})
    assert response.status_code == 403
    assert (
        factory.as_(None).post(DEVICES, json={"token": TOKEN, "platform": "ios"}).status_code == 401
    )


def test_bad_device_input_is_422_naming_the_field_and_writes_nothing(factory, clock):
    phone = factory.as_(enrol(factory, clock))
    cases = [
        ({"token": "", "platform": "android"}, "token"),
        ({"token": "x" * 1025, "platform": "android"}, "token"),
        ({"token": TOKEN, "platform": "windows"}, "platform"),
        ({"platform": "android"}, "token"),
        ({"token": TOKEN, "platform": "ios", "locale": "fr"}, "locale"),
        ({"token": TOKEN, "platform": "ios", "participant_id": 3}, "participant_id"),
    ]
    for body, field in cases:
        response = phone.post(DEVICES, json=body)
        assert response.status_code == 422, body
        assert field in response.json["errors"], response.json
    assert device_rows(factory) == []


def test_concurrent_registrations_of_one_token_make_one_device(app, factory, clock):
    people = [enrol(factory, clock) for _ in range(4)]
    tokens = [factory.token(p) for p in people]
    answers: list[int] = []
    barrier = threading.Barrier(len(tokens))

    def register(token: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            DEVICES,
            json={"token": TOKEN, "platform": "android"},
            headers={"Authorization": f"Bearer {token}"},
        )
        answers.append(response.status_code)

    threads = [threading.Thread(target=register, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 200, 200, 201]
    assert factory.scalar(select(func.count()).select_from(Device)) == 1


def _send_diary_reminder(app, factory, clock, participant) -> Reminder:
    add_device(app, participant, f"token-{participant.id}")
    clock.set("2026-04-01T20:30:00+08:00")
    Worker(app).run_pass()  # no credentials: recorded as sent, logged
    return factory.scalar(
        select(Reminder).where(
            Reminder.participant_id == participant.id,
            Reminder.status == "sent",
        )
    )


def test_my_notifications_and_opening_one(app, factory, clock):
    p = enrol(factory, clock, locale="en")
    reminder = _send_diary_reminder(app, factory, clock, p)
    phone = factory.as_(p)
    listed = phone.get(NOTIFICATIONS)
    assert listed.status_code == 200
    (item,) = listed.json
    assert item["id"] == reminder.id and item["kind"] == "diary"
    assert item["title"] == "Symptom diary" and item["opened_at"] is None
    clock.set("2026-04-01T20:45:00+08:00")
    phone = factory.as_(p)  # a fresh access token at the new time
    opened = phone.post(f"{NOTIFICATIONS}/{reminder.id}/opened")
    assert opened.status_code == 200
    assert opened.json["opened_at"].startswith("2026-04-01T12:45:00")
    clock.set("2026-04-01T21:00:00+08:00")
    again = factory.as_(p).post(f"{NOTIFICATIONS}/{reminder.id}/opened")
    assert again.json["opened_at"] == opened.json["opened_at"]  # the first opening is kept


def test_someone_elses_or_an_unsent_notification_is_404(app, factory, clock):
    p, other = enrol(factory, clock), enrol(factory, clock)
    reminder = _send_diary_reminder(app, factory, clock, p)
    assert factory.as_(other).post(f"{NOTIFICATIONS}/{reminder.id}/opened").status_code == 404
    assert factory.as_(other).get(NOTIFICATIONS).json == []
    planned = factory.scalar(
        select(Reminder).where(Reminder.participant_id == p.id, Reminder.status == "planned")
    )
    response = factory.as_(p).post(f"{NOTIFICATIONS}/{planned.id}/opened")
    assert response.status_code == 404 and response.json["error"] == "notification_not_found"


def test_staff_see_reminders_with_their_deliveries(app, factory, clock):
    p = enrol(factory, clock)
    reminder = _send_diary_reminder(app, factory, clock, p)
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    url = f"/api/v1/participants/{p.id}/reminders"
    listed = factory.as_(coordinator).get(url)
    assert listed.status_code == 200
    by_id = {r["id"]: r for r in listed.json}
    sent = by_id[reminder.id]
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 1, None)
    assert sent["deliveries"][0]["message_id"].startswith("dry-run/")
    assert {r["status"] for r in listed.json} == {"sent", "planned"}
    only_sent = factory.as_(coordinator).get(url, query_string={"status": "sent"})
    assert [r["id"] for r in only_sent.json] == [reminder.id]
    window = factory.as_(coordinator).get(
        url, query_string={"from": "2026-04-02", "to": "2026-04-02"}
    )
    assert reminder.id not in {r["id"] for r in window.json} and window.json
    monitor = factory.staff("monitor")
    assert factory.as_(monitor).get(url).status_code == 200


def test_staff_reminders_are_site_scoped(factory, clock):
    p = enrol(factory, clock)
    elsewhere = factory.staff("coordinator", sites=("LZU1",))
    url = f"/api/v1/participants/{p.id}/reminders"
    assert factory.as_(elsewhere).get(url).status_code == 404
    assert factory.as_(p).get(url).status_code == 403
    bad = factory.as_(factory.staff("admin")).get(url, query_string={"status": "lost"})
    assert bad.status_code == 422 and "status" in bad.json["errors"]
