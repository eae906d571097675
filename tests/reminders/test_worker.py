"""The worker against a fake FCM through the real firebase-admin SDK: results, retries, leases."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Alert, Device, Participant, Reminder, ReminderDelivery
from notifications import worker as worker_module
from notifications.worker import Worker, claim
from tests.reminders.conftest import add_device, at

DIARY_DUE = "2026-04-01T20:30:00+08:00"  # the 1 April diary reminder (20:00) is due


def enrol(factory, clock, **extra) -> Participant:
    clock.set("2026-01-06T10:00:00+08:00")
    return factory.participant(arm="msc", enrolled_on=date(2026, 1, 5), **extra)


def rows(factory, participant: Participant, kind: str | None = None) -> list[Reminder]:
    """The participant's reminders (of `kind`; for the diary, the 1 April one)."""
    stmt = select(Reminder).where(Reminder.participant_id == participant.id)
    if kind:
        stmt = stmt.where(Reminder.kind == kind)
    if kind == "diary":
        stmt = stmt.where(Reminder.target_date == date(2026, 4, 1))
    return factory.scalars(stmt.order_by(Reminder.id))


def deliveries(factory, reminder_id: int) -> list[ReminderDelivery]:
    return factory.scalars(
        select(ReminderDelivery)
        .where(ReminderDelivery.reminder_id == reminder_id)
        .order_by(ReminderDelivery.id)
    )


def diary_pass(worker, clock, when: str = DIARY_DUE):
    clock.set(when)
    return worker.run_pass()


def test_a_due_reminder_is_sent_once_with_its_collapse_key(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    device_id = add_device(app, p, "token-zh")
    result = diary_pass(worker, clock)
    assert result.outcomes["sent"] == 1
    (diary,) = rows(factory, p, "diary")
    assert (diary.status, diary.attempts, diary.last_error) == ("sent", 1, None)
    assert diary.sent_at == clock() and diary.lease_owner is None
    (message,) = fake_fcm.received
    body = message.message
    assert body["token"] == "token-zh"
    assert body["data"] == {
        "reminder_id": str(diary.id),
        "kind": "diary",
        "target_date": "2026-04-01",
    }
    assert body["android"]["collapse_key"] == str(diary.id)
    assert body["apns"]["headers"]["apns-collapse-id"] == str(diary.id)
    assert body["notification"]["title"] == "症状日记"
    assert "4月1日" in body["notification"]["body"]
    (delivery,) = deliveries(factory, diary.id)
    assert delivery.device_id == device_id and delivery.attempt == 1
    assert delivery.message_id == "projects/fake-project/messages/1" and delivery.error is None
    # Later passes, re-planning included, send nothing again.
    diary_pass(worker, clock, "2026-04-01T21:00:00+08:00")
    assert len(fake_fcm.received) == 1


def test_texts_follow_the_participants_locale(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "token-en")
    clock.set("2026-04-02T09:00:00+08:00")  # infusion and lab visit on 5 April: in 3 days
    worker.run_pass()
    titles = sorted(r.message["notification"]["title"] for r in fake_fcm.received)
    assert titles == ["Infusion and lab visit in 3 days"]  # one message (tests/.../bundles)
    bodies = " ".join(r.message["notification"]["body"] for r in fake_fcm.received)
    assert "Sunday 5 April" in bodies


def test_every_active_device_gets_the_message(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    add_device(app, p, "phone-a")
    add_device(app, p, "phone-b", platform="ios")
    dropped = add_device(app, p, "phone-old")
    factory.update(Device, dropped, active=False)
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert sorted(r.token for r in fake_fcm.received) == ["phone-a", "phone-b"]
    assert {r.reminder_id for r in fake_fcm.received} == {str(diary.id)}
    assert [d.message_id is not None for d in deliveries(factory, diary.id)] == [True, True]


@pytest.mark.parametrize("code", ["UNREGISTERED", "SENDER_ID_MISMATCH"])
def test_a_dead_token_is_deactivated(app, factory, clock, worker, fake_fcm, code):
    p = enrol(factory, clock)
    dead = add_device(app, p, "dead-token")
    alive = add_device(app, p, "alive-token")
    fake_fcm.script("dead-token", code)
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "sent"
    device = factory.scalar(select(Device).where(Device.id == dead))
    assert (device.active, device.deactivated_reason) == (False, code)
    assert factory.scalar(select(Device.active).where(Device.id == alive)) is True
    errors = {d.device_id: d.error_code for d in deliveries(factory, diary.id)}
    assert errors == {dead: code, alive: None}


def test_a_reminder_whose_only_token_is_dead_is_undeliverable(
    app, factory, clock, worker, fake_fcm
):
    p = enrol(factory, clock)
    add_device(app, p, "dead-token")
    fake_fcm.script("dead-token", "UNREGISTERED")
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "undeliverable"
    assert "UNREGISTERED" in diary.last_error


def test_no_active_device_is_undeliverable_and_sends_nothing(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    result = diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert (diary.status, diary.last_error) == ("undeliverable", "no active device")
    assert result.outcomes["undeliverable"] == 1 and fake_fcm.received == []


def test_quota_exceeded_waits_for_retry_after(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    add_device(app, p, "busy")
    fake_fcm.state.retry_after = "120"
    fake_fcm.script("busy", "QUOTA_EXCEEDED", "ok")
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "planned" and diary.last_error.startswith("QUOTA_EXCEEDED")
    assert diary.next_attempt_at == at(DIARY_DUE) + timedelta(seconds=120)  # > 30 s back-off
    diary_pass(worker, clock, "2026-04-01T20:31:59+08:00")
    assert len(fake_fcm.received) == 1
    diary_pass(worker, clock, "2026-04-01T20:32:00+08:00")
    (diary,) = rows(factory, p, "diary")
    assert (diary.status, diary.attempts, diary.last_error) == ("sent", 2, None)
    assert [d.error_code for d in deliveries(factory, diary.id)] == ["QUOTA_EXCEEDED", None]


def test_unavailable_and_internal_are_retried_with_exponential_backoff(
    app, factory, clock, worker, fake_fcm
):
    p = enrol(factory, clock)
    add_device(app, p, "flaky")
    fake_fcm.script("flaky", "UNAVAILABLE", "INTERNAL", "ok")
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.next_attempt_at == at(DIARY_DUE) + timedelta(seconds=30)
    diary_pass(worker, clock, "2026-04-01T20:30:30+08:00")
    (diary,) = rows(factory, p, "diary")
    assert diary.last_error.startswith("INTERNAL")
    assert diary.next_attempt_at == at("2026-04-01T20:31:30+08:00")  # 60 s after the 2nd try
    diary_pass(worker, clock, "2026-04-01T20:31:30+08:00")
    (diary,) = rows(factory, p, "diary")
    assert (diary.status, diary.attempts) == ("sent", 3)
    # The SDK itself did not retry: one request per attempt reached the server.
    assert [r.answer for r in fake_fcm.received] == ["UNAVAILABLE", "INTERNAL", "ok"]


def test_a_timeout_is_retried(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    add_device(app, p, "slow-phone")
    fake_fcm.script("slow-phone", "slow", "ok")
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "planned" and diary.last_error.startswith("TIMEOUT")
    diary_pass(worker, clock, "2026-04-01T20:31:00+08:00")
    assert rows(factory, p, "diary")[0].status == "sent"


def test_transient_errors_until_expiry_end_as_expired(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    add_device(app, p, "down")
    fake_fcm.script("down", "UNAVAILABLE")
    # The next try would fall at 22:00:15, in quiet hours; their end (07:00) is past the
    # diary day's end, so the reminder expires with FCM's answer as its reason.
    diary_pass(worker, clock, "2026-04-01T21:59:45+08:00")
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "expired" and diary.last_error.startswith("UNAVAILABLE")
    assert diary.attempts == 1


def test_invalid_argument_fails_with_the_reason(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock)
    add_device(app, p, "bad")
    fake_fcm.script("bad", "INVALID_ARGUMENT", "ok")
    diary_pass(worker, clock)
    diary_pass(worker, clock, "2026-04-01T21:30:00+08:00")
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "failed"
    assert diary.last_error.startswith("INVALID_ARGUMENT") and "not a valid FCM" in diary.last_error
    assert len(fake_fcm.received) == 1
    assert factory.scalar(select(Device.active).where(Device.participant_id == p.id)) is True


def test_a_withdrawn_participant_gets_nothing_already_planned(
    app, factory, clock, worker, fake_fcm
):
    p = enrol(factory, clock)
    add_device(app, p, "token")
    clock.set("2026-04-01T19:00:00+08:00")
    worker.run_pass()  # plans the 20:00 diary reminder
    factory.update(Participant, p.id, status="withdrawn")
    clock.set(DIARY_DUE)
    with app.app_context():  # even a claim before any re-planning refuses it
        assert claim("other", clock(), 10, timedelta(minutes=5)) == []
        db.session.rollback()
    worker.run_pass()
    assert fake_fcm.received == []
    assert rows(factory, p, "diary")[0].status == "cancelled"


def test_a_rescheduled_event_sends_nothing_stale(app, factory, clock, worker, fake_fcm):
    from api.models import ScheduleEvent

    p = enrol(factory, clock)
    add_device(app, p, "token")
    clock.set("2026-04-01T12:00:00+08:00")
    worker.run_pass()  # plans the "3 days before" reminders of 5 April
    infusion = factory.scalar(
        select(ScheduleEvent).where(
            ScheduleEvent.participant_id == p.id,
            ScheduleEvent.kind == "infusion",
            ScheduleEvent.number == 2,
        )
    )
    factory.update(ScheduleEvent, infusion.id, target_date=date(2026, 4, 12))
    clock.set("2026-04-02T09:30:00+08:00")
    worker.run_pass()
    sent = [r.message["notification"]["title"] for r in fake_fcm.received if r.kind == "infusion"]
    assert sent == []
    assert [r.kind for r in fake_fcm.received] == ["visit"]


def test_a_crashed_workers_rows_are_taken_over_after_the_lease(
    app, factory, clock, fcm_sender, fake_fcm
):
    p = enrol(factory, clock)
    add_device(app, p, "token")
    clock.set(DIARY_DUE)
    crashed = Worker(app, sender=fcm_sender, worker_id="crashed")
    survivor = Worker(app, sender=fcm_sender, worker_id="survivor")
    with app.app_context():
        from notifications import planning

        planning.plan(clock())
        assert len(claim("crashed", clock(), 10, timedelta(seconds=300))) == 1
        db.session.commit()
    survivor.run_pass()
    assert fake_fcm.received == []  # still leased
    clock.set("2026-04-01T20:35:01+08:00")
    survivor.run_pass()
    (diary,) = rows(factory, p, "diary")
    assert (diary.status, diary.attempts, len(fake_fcm.received)) == ("sent", 2, 1)
    assert crashed.id != survivor.id


def test_results_of_a_lost_lease_do_not_overwrite_the_new_owner(
    app, factory, clock, fcm_sender, fake_fcm
):
    p = enrol(factory, clock)
    add_device(app, p, "token")
    clock.set(DIARY_DUE)
    slow = Worker(app, sender=fcm_sender, worker_id="slow")
    with app.app_context():
        from notifications import planning

        planning.plan(clock())
        claimed = claim("slow", clock(), 10, timedelta(seconds=60))
        db.session.commit()
    clock.set("2026-04-01T20:32:00+08:00")  # the lease ran out; another worker sends it
    Worker(app, sender=fcm_sender, worker_id="fast").run_pass()
    with app.app_context():
        counts = slow.deliver(claimed)  # the slow worker finally gets to it
    assert counts["lease_lost"] == 1
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "sent" and diary.attempts == 2
    assert len(deliveries(factory, diary.id)) == 2  # both messages are on record


def test_send_each_gets_at_most_the_batch_size(
    app, factory, clock, fcm_sender, fake_fcm, monkeypatch
):
    from firebase_admin import messaging

    sizes: list[int] = []
    original = messaging.send_each

    def counting(messages, dry_run=False, app=None):
        sizes.append(len(messages))
        return original(messages, dry_run=dry_run, app=app)

    monkeypatch.setattr(messaging, "send_each", counting)
    fcm_sender.batch_size = 2
    for n in range(3):
        add_device(app, enrol(factory, clock), f"token-{n}")
    diary_pass(Worker(app, sender=fcm_sender, worker_id="w"), clock)
    assert sorted(sizes) == [1, 2] and len(fake_fcm.received) == 3
    from notifications.sender import FcmSender

    assert FcmSender(None, 10_000).batch_size == 500


def test_without_credentials_the_worker_logs_what_it_would_send(app, factory, clock, caplog):
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "token")
    caplog.set_level(logging.INFO)
    worker = Worker(app)  # the test app has no FCM credentials
    assert worker.sender.dry_run
    diary_pass(worker, clock)
    (diary,) = rows(factory, p, "diary")
    assert diary.status == "sent"
    assert f"reminder {diary.id} (diary) sent to device" in caplog.text
    assert "Symptom diary" in caplog.text
    assert deliveries(factory, diary.id)[0].message_id.startswith("dry-run/")


def test_the_pass_raises_missed_diary_alerts(app, factory, clock, worker):
    p = enrol(factory, clock)
    result = diary_pass(worker, clock)
    assert result.alerts >= 1
    kinds = factory.scalars(select(Alert.kind).where(Alert.participant_id == p.id))
    assert "missed_diary" in kinds


def test_cli_run_now_and_preview(app, factory, clock):
    p = enrol(factory, clock)
    add_device(app, p, "token")
    runner = app.test_cli_runner()
    out = runner.invoke(args=["notifications", "run", "--now", DIARY_DUE, "--force"])
    assert out.exit_code == 0, out.output
    assert "1 sent" in out.output
    assert rows(factory, p, "diary")[0].status == "sent"
    preview = runner.invoke(
        args=[
            "notifications",
            "preview",
            p.study_code,
            "--days",
            "5",
            "--now",
            "2026-04-01T21:00:00+08:00",
        ]
    )
    assert preview.exit_code == 0, preview.output
    assert "infusion" in preview.output and "not yet planned" in preview.output
    assert "2026-04-02 09:00 CST" in preview.output
    bad = runner.invoke(args=["notifications", "run", "--now", "yesterday"])
    assert bad.exit_code != 0 and "ISO 8601" in bad.output
    assert runner.invoke(args=["notifications", "preview", "NOPE-0001"]).exit_code != 0


def test_backoff_grows_and_honours_retry_after():
    assert [worker_module.backoff(n, 30, 3600, None) for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]
    assert worker_module.backoff(1, 30, 3600, 90) == 90


def test_sigterm_stops_the_worker_process_cleanly(app, database_url, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "0",
        "WORKER_INTERVAL_SECONDS": "60",
        "PYTHONPATH": f"{root / 'tests' / 'guarded_site'}{os.pathsep}{root}",
        "SOCKET_GUARD_ROOT": str(root),
    }
    for name in ("FCM_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"):
        env.pop(name, None)
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("flask")), "--app", "wsgi", "notifications", "run"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while "pass:" not in log_path.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log_path.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    output = log_path.read_text()
    assert "no FCM credentials: logging what would be sent" in output
    assert "stopped" in output and "Traceback" not in output
