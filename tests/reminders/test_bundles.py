"""Reminders a participant reads once: bundles, lease renewal, the nearest notice after an
outage. The `msc` arm has an infusion and a lab visit on 5 April 2026 (both "3 days
before" reminders are due 2 April 09:00 Shanghai time)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from time import monotonic, sleep

import pytest
from sqlalchemy import select

from api.extensions import db
from api.models import Participant, Reminder, ReminderDelivery, ScheduleEvent
from notifications import planning
from notifications.sender import LoggingSender, Outcome
from notifications.worker import Worker, claim
from tests.reminders.conftest import add_device, at

THREE_DAYS_BEFORE = "2026-04-02T09:00:00+08:00"


def enrol(factory, clock, **extra) -> Participant:
    clock.set("2026-01-06T10:00:00+08:00")
    return factory.participant(arm="msc", enrolled_on=date(2026, 1, 5), **extra)


def event_rows(factory, participant: Participant) -> list[Reminder]:
    """The participant's reminders of the 5 April infusion and lab visit, by id."""
    return factory.scalars(
        select(Reminder)
        .where(
            Reminder.participant_id == participant.id,
            Reminder.kind != "diary",
            Reminder.target_date == date(2026, 4, 5),
        )
        .order_by(Reminder.id)
    )


def deliveries(factory, reminder_id: int) -> list[ReminderDelivery]:
    return factory.scalars(
        select(ReminderDelivery)
        .where(ReminderDelivery.reminder_id == reminder_id)
        .order_by(ReminderDelivery.id)
    )


@pytest.mark.parametrize(
    ("locale", "title", "body_part"),
    [
        ("en", "Infusion and lab visit in 3 days", "Your infusion and lab visit are on Sunday"),
        ("zh-CN", "3天后输注和化验复查提醒", "您的输注和化验复查安排在4月5日（星期日）"),  # noqa: RUF001
    ],
)
def test_an_infusion_and_a_lab_visit_due_together_are_one_message_per_device(
    app, factory, clock, worker, fake_fcm, locale, title, body_part
):
    p = enrol(factory, clock, locale=locale)
    phones = {add_device(app, p, "phone-a"), add_device(app, p, "phone-b", platform="ios")}
    clock.set(THREE_DAYS_BEFORE)
    result = worker.run_pass()
    infusion, visit = event_rows(factory, p)
    assert (infusion.kind, visit.kind) == ("infusion", "visit")
    assert result.outcomes["sent"] == 2  # two reminders ...
    assert sorted(r.token for r in fake_fcm.received) == ["phone-a", "phone-b"]  # ... 2 pushes
    smallest = str(min(infusion.id, visit.id))
    for received in fake_fcm.received:
        message = received.message
        assert message["notification"]["title"] == title
        assert body_part in message["notification"]["body"]
        assert message["android"]["collapse_key"] == smallest
        assert message["apns"]["headers"]["apns-collapse-id"] == smallest
        assert message["data"]["reminder_id"] == smallest
        assert message["data"]["reminder_ids"] == f"{infusion.id},{visit.id}"
    # Each reminder keeps its own row, state and one delivery row per device.
    for row in (infusion, visit):
        assert (row.status, row.attempts, row.sent_at) == ("sent", 1, clock())
        rows = deliveries(factory, row.id)
        assert {d.device_id for d in rows} == phones
        assert all(d.message_id and d.attempt == 1 for d in rows)
    assert {d.message_id for d in deliveries(factory, infusion.id)} == {
        d.message_id for d in deliveries(factory, visit.id)
    }
    worker.run_pass()  # nothing again
    assert len(fake_fcm.received) == 2


def test_a_bundle_retried_after_a_transient_error_stays_one_bundle(
    app, factory, clock, worker, fake_fcm
):
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "flaky")
    fake_fcm.script("flaky", "UNAVAILABLE", "ok")
    clock.set(THREE_DAYS_BEFORE)
    worker.run_pass()
    infusion, visit = event_rows(factory, p)
    assert infusion.status == visit.status == "planned"
    assert infusion.next_attempt_at == visit.next_attempt_at is not None
    assert infusion.last_error.startswith("UNAVAILABLE")
    clock.set(infusion.next_attempt_at + timedelta(seconds=1))
    worker.run_pass()
    first, retry = fake_fcm.received
    assert first.answer == "UNAVAILABLE" and retry.answer == "ok"
    for received in (first, retry):
        assert received.message["notification"]["title"] == "Infusion and lab visit in 3 days"
        assert received.message["android"]["collapse_key"] == str(infusion.id)
    infusion, visit = event_rows(factory, p)
    assert (infusion.status, infusion.attempts) == (visit.status, visit.attempts) == ("sent", 2)
    assert [d.attempt for d in deliveries(factory, visit.id)] == [1, 2]


def test_a_cancelled_reminder_is_simply_not_in_its_bundle(app, factory, clock, worker, fake_fcm):
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "token")
    clock.set("2026-04-01T12:00:00+08:00")
    worker.run_pass()  # plans both "3 days before" reminders of 5 April
    visit = factory.scalar(
        select(ScheduleEvent).where(
            ScheduleEvent.participant_id == p.id,
            ScheduleEvent.kind == "lab_visit",
            ScheduleEvent.target_date == date(2026, 4, 5),
        )
    )
    factory.update(ScheduleEvent, visit.id, status="cancelled")
    clock.set(THREE_DAYS_BEFORE)
    worker.run_pass()
    (received,) = [r for r in fake_fcm.received if r.kind != "diary"]
    assert received.message["notification"]["title"] == "Infusion in 3 days"
    assert "reminder_ids" not in received.message["data"]
    infusion, lab = event_rows(factory, p)
    assert (infusion.status, lab.status) == ("sent", "cancelled")
    assert deliveries(factory, lab.id) == []


def test_a_bundle_cut_by_the_batch_size_is_claimed_whole(
    app, factory, clock, worker, fake_fcm, monkeypatch
):
    monkeypatch.setitem(app.config, "FCM_BATCH_SIZE", 1)
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "token")
    clock.set(THREE_DAYS_BEFORE)
    worker.run_pass()
    (received,) = fake_fcm.received
    assert received.message["notification"]["title"] == "Infusion and lab visit in 3 days"


def test_the_preview_shows_the_combined_text(app, factory, clock):
    p = enrol(factory, clock, locale="en")
    runner = app.test_cli_runner()
    args = ["notifications", "preview", p.study_code, "--days", "1"]
    out = runner.invoke(args=[*args, "--now", "2026-04-02T08:00:00+08:00"])
    assert out.exit_code == 0, out.output
    (line,) = [x for x in out.output.splitlines() if "2026-04-02 09:00" in x]
    assert "infusion+visit" in line and "Infusion and lab visit in 3 days — Your" in line
    assert line.count("not yet planned") == 2


# --- the lease is renewed while FCM is slow ------------------------------------------------


class _BlockingSender(LoggingSender):
    """Answers only once released: an FCM that takes longer than a lease."""

    dry_run = False

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def send(self, messages, now):
        self.started.set()
        assert self.release.wait(30), "never released"
        return [Outcome(message_id=f"slow/{m.reminder_id}/{m.device_id}") for m in messages]


def test_a_slow_send_keeps_its_lease_and_no_second_worker_takes_the_batch(
    app, factory, clock, monkeypatch
):
    lease = 2.0
    monkeypatch.setitem(app.config, "REMINDER_LEASE_SECONDS", lease)
    p = enrol(factory, clock)
    add_device(app, p, "token")
    start, t0 = at(THREE_DAYS_BEFORE), monotonic()

    def moving() -> datetime:  # simulated time that runs at wall-clock speed
        return start + timedelta(seconds=monotonic() - t0)

    with app.app_context():
        planning.plan(start)
    sender = _BlockingSender()
    slow = Worker(app, sender=sender, worker_id="slow", clock=moving)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with app.app_context():
                slow.dispatch()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert sender.started.wait(10)
        claimed_at = moving()
        while moving() < claimed_at + timedelta(seconds=2 * lease):  # well past one lease
            sleep(0.1)
        with app.app_context():
            taken = claim("other", moving(), 10, timedelta(seconds=lease))
            db.session.commit()
            held = db.session.scalars(
                select(Reminder).where(Reminder.participant_id == p.id, Reminder.kind != "diary")
            ).all()
            assert {r.lease_owner for r in held} == {"slow"}
            assert all(r.lease_expires_at > moving() for r in held)
        assert taken == []
    finally:
        sender.release.set()
        thread.join(30)
    assert errors == []
    infusion, visit = event_rows(factory, p)
    assert (infusion.status, infusion.attempts) == (visit.status, visit.attempts) == ("sent", 1)
    assert len(deliveries(factory, infusion.id)) == 1


class Moment:
    """A worker's movable clock and timer: `advance` moves both by the same seconds."""

    def __init__(self, start: datetime) -> None:
        self.start, self.seconds = start, 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds)

    def ticks(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


@contextmanager
def claimed_batch(app, factory, clock, monkeypatch, owner: str, lease: int):  # type: ignore[no-untyped-def]
    """Inside an app context: a worker `owner` on a `Moment` whose leases last `lease`
    seconds, and the batch it has just claimed (a phone's "3 days before" reminders)."""
    monkeypatch.setitem(app.config, "REMINDER_LEASE_SECONDS", lease)
    p = enrol(factory, clock)
    add_device(app, p, "token")
    moment = Moment(at(THREE_DAYS_BEFORE))
    worker = Worker(app, LoggingSender(), owner, clock=moment.now, timer=moment.ticks)
    with app.app_context():
        planning.plan(moment.start)
        batch = worker._next_batch()
        assert batch is not None and batch.ids and batch.messages
        yield worker, batch, moment


def test_a_lease_that_aged_before_the_send_is_renewed_before_the_wait(
    app, factory, clock, monkeypatch
):
    """The database work between a claim and FCM's answer (building this batch's messages,
    claiming the next, recording the last) counts against the lease too: a batch half a
    lease old is renewed before the worker waits on, or records, it."""
    lease = 10
    with claimed_batch(app, factory, clock, monkeypatch, "w", lease) as (worker, batch, moment):
        moment.advance(6)  # six seconds of database work since the claim: past half the lease
        batch.outcomes = []  # FCM has answered already: no wait would renew it
        worker._await(batch, [batch])
        rows = db.session.scalars(select(Reminder).where(Reminder.id.in_(batch.ids))).all()
        assert {r.lease_owner for r in rows} == {"w"}
        assert {r.lease_expires_at for r in rows} == {moment.start + timedelta(seconds=6 + lease)}


def test_a_batch_whose_lease_lapsed_before_it_was_sent_leaves_it_to_the_new_holder(
    app, factory, clock, monkeypatch
):
    """A renewal that comes after the lease ran out, and after another worker took the
    batch, must not be followed by this worker sending it too."""
    lease = 10
    with claimed_batch(app, factory, clock, monkeypatch, "slow", lease) as (slow, batch, moment):
        moment.advance(11)  # a whole lease of database work: the lease lapsed
        taken = claim("other", moment.now(), 10, timedelta(seconds=lease))
        db.session.commit()
        assert sorted(c.id for c in taken) == sorted(batch.ids)
        slow._renew([batch])
        assert batch.claimed == [] and batch.messages == []
        rows = db.session.scalars(select(Reminder).where(Reminder.id.in_([c.id for c in taken])))
        assert {r.lease_owner for r in rows} == {"other"}


# --- after a long outage, only the nearest notice ------------------------------------------


@pytest.mark.parametrize("stored_before", ["3 days before only", "both notices"])
def test_after_a_long_outage_only_the_nearest_notice_is_sent(
    app, factory, clock, worker, fake_fcm, stored_before
):
    p = enrol(factory, clock, locale="en")
    add_device(app, p, "token")
    with app.app_context():
        planning.plan(at("2026-04-01T12:00:00+08:00"))  # stores the "3 days before" ones
        if stored_before == "both notices":
            planning.plan(at("2026-04-03T12:00:00+08:00"))  # and the "1 day before" ones
    # The worker was down from 1 April to 4 April 10:00: all four notices are past due.
    clock.set("2026-04-04T10:00:00+08:00")
    result = worker.run_pass()
    events = [r for r in fake_fcm.received if r.kind != "diary"]
    assert [r.message["notification"]["title"] for r in events] == [
        "Infusion and lab visit tomorrow"
    ]
    by_offset = {(r.kind, r.offset_days): r.status for r in event_rows(factory, p)}
    assert by_offset == {
        ("infusion", 3): "expired",
        ("visit", 3): "expired",
        ("infusion", 1): "sent",
        ("visit", 1): "sent",
    }
    assert result.plan.expired >= 2


# --- the combined text --------------------------------------------------------------------


def test_a_bundle_of_different_days_and_the_diary_reads_as_one_message():
    from notifications.texts import render, render_bundle

    today = date(2026, 4, 2)
    items = [("infusion", date(2026, 4, 5)), ("lab_visit", date(2026, 4, 3)), ("diary", today)]
    assert render_bundle(items, today, "en") == (
        "Lab visit tomorrow; infusion in 3 days; symptom diary",
        "Your lab visit is on Friday 3 April. Your infusion is on Sunday 5 April. "
        "Please come to the hospital as planned. "
        "Please fill in today's symptom diary (Thursday 2 April).",
    )
    title, body = render_bundle(items, today, "zh-CN")
    assert title == "明天化验复查提醒；3天后输注提醒；症状日记"  # noqa: RUF001
    assert body.startswith("您的化验复查安排在4月3日") and body.endswith("的症状日记。")
    # A bundle of one is the reminder's own text.
    one = [("follow_up", date(2026, 4, 5))]
    assert render_bundle(one, today, "en") == render("follow_up", date(2026, 4, 5), today, "en")
