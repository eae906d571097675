"""Quiet hours hold at send time: a reminder held back into 22:00-07:00 local waits for 07:00
or expires; never sent at night (the worker down, FCM retrying), DST nights and abroad too."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import select

from api.models import Participant, Reminder, ScheduleEvent
from notifications.quiet import hold, quiet_until
from notifications.rules import ReminderRules
from tests.reminders.conftest import add_device, at

RULES = ReminderRules((3, 1), time(22, 0), time(7, 0), 6)


@pytest.mark.parametrize(
    ("instant", "zone", "morning"),
    [
        ("2026-04-01T22:00:00+08:00", "Asia/Shanghai", "2026-04-02T07:00:00+08:00"),
        ("2026-04-02T06:59:59+08:00", "Asia/Shanghai", "2026-04-02T07:00:00+08:00"),
        # spring forward in Berlin (29 March 02:00 -> 03:00): 07:00 CEST is 05:00Z
        ("2026-03-28T22:30:00+01:00", "Europe/Berlin", "2026-03-29T05:00:00+00:00"),
        # fall back (25 October 03:00 -> 02:00): 07:00 CET is 06:00Z
        ("2026-10-24T23:00:00+02:00", "Europe/Berlin", "2026-10-25T06:00:00+00:00"),
    ],
)
def test_an_instant_in_quiet_hours_waits_for_seven_local(instant, zone, morning):
    assert quiet_until(at(instant), zone, RULES) == at(morning)


@pytest.mark.parametrize(
    ("instant", "zone"),
    [
        ("2026-04-01T21:59:59+08:00", "Asia/Shanghai"),
        ("2026-04-02T07:00:00+08:00", "Asia/Shanghai"),
        ("2026-04-01T23:00:00+08:00", "Europe/Berlin"),
    ],
)
def test_an_instant_outside_quiet_hours_is_not_held(instant, zone):
    assert quiet_until(at(instant), zone, RULES) is None


def test_the_morning_at_or_after_the_expiry_expires_the_reminder():
    night = at("2026-04-01T22:58:00+08:00")
    assert hold(night, at("2026-04-02T00:00:00+08:00"), "Asia/Shanghai", RULES) == (
        "expired",
        None,
    )
    assert hold(night, at("2026-04-02T07:00:00+08:00"), "Asia/Shanghai", RULES) == (
        "expired",
        None,
    )
    assert hold(night, at("2026-04-05T00:00:00+08:00"), "Asia/Shanghai", RULES) == (
        "planned",
        at("2026-04-02T07:00:00+08:00"),
    )


def enrol(factory, clock, enrolled_on: date = date(2026, 1, 5), **extra) -> Participant:
    clock.set("2026-01-06T10:00:00+08:00")
    return factory.participant(arm="msc", enrolled_on=enrolled_on, **extra)


def reminders(factory, participant: Participant) -> list[Reminder]:
    return factory.scalars(
        select(Reminder)
        .where(Reminder.participant_id == participant.id)
        .order_by(Reminder.due_at, Reminder.id)
    )


def test_a_diary_reminder_reached_at_2258_expires_unsent(app, factory, clock, worker, fake_fcm):
    """The worker was down from before the 20:00 diary reminder until 22:58."""
    p = enrol(factory, clock)
    add_device(app, p, "phone")
    clock.set("2026-04-01T22:58:00+08:00")
    worker.run_pass()
    (diary,) = [r for r in reminders(factory, p) if r.target_date == date(2026, 4, 1)]
    assert diary.kind == "diary" and diary.due_at == at("2026-04-01T20:00:00+08:00")
    assert (diary.status, diary.attempts, diary.sent_at) == ("expired", 0, None)
    assert fake_fcm.received == []


def test_an_infusion_reminder_reached_at_night_abroad_waits_for_seven_there(
    app, factory, clock, worker, fake_fcm
):
    """A Beijing participant in New York: the hours are quiet by the participant's zone."""
    p = enrol(factory, clock, timezone="America/New_York", reminder_time="21:30")
    add_device(app, p, "phone")
    clock.set("2026-04-02T23:30:00-04:00")  # 11:30 the next morning in Beijing
    worker.run_pass()
    notice = [r for r in reminders(factory, p) if r.kind == "infusion" and r.offset_days == 3]
    (infusion,) = [r for r in notice if r.due_at == at("2026-04-02T21:30:00-04:00")]
    assert (infusion.status, infusion.attempts) == ("planned", 0)
    assert infusion.next_attempt_at == at("2026-04-03T07:00:00-04:00")
    assert fake_fcm.received == []
    clock.set("2026-04-03T06:59:00-04:00")
    worker.run_pass()
    assert fake_fcm.received == []
    clock.set("2026-04-03T07:00:00-04:00")
    worker.run_pass()
    (infusion,) = [r for r in reminders(factory, p) if r.id == infusion.id]
    assert (infusion.status, infusion.attempts) == ("sent", 1)
    assert infusion.sent_at == at("2026-04-03T07:00:00-04:00")
    assert [m.token for m in fake_fcm.received] == ["phone"]


def test_a_retry_held_past_22_keeps_its_error_and_goes_at_seven_across_the_dst_night(
    app, factory, clock, worker, fake_fcm
):
    """Berlin, 28 March: the 21:50 notice fails (FCM down), its retry is due at 21:50:30
    but the worker's next pass is at 22:05; it waits for 07:00 CEST (05:00Z, clocks went
    forward in the night) with FCM's error kept; the diary reminder expires."""
    p = enrol(
        factory,
        clock,
        enrolled_on=date(2025, 12, 31),
        timezone="Europe/Berlin",
        reminder_time="21:50",
        diary_reminder_time="21:50",
    )
    add_device(app, p, "phone")
    events = factory.scalars(
        select(ScheduleEvent).where(
            ScheduleEvent.participant_id == p.id, ScheduleEvent.target_date == date(2026, 3, 31)
        )
    )
    assert events, "no event on 31 March for this enrolment"
    fake_fcm.go_down()
    clock.set("2026-03-28T21:50:00+01:00")
    worker.run_pass()
    fake_fcm.come_back()
    first = {r.id: r for r in reminders(factory, p) if r.due_at == clock()}
    assert {r.kind for r in first.values()} >= {"diary"} and len(first) >= 2
    assert {(r.status, r.attempts) for r in first.values()} == {("planned", 1)}
    tried = len(fake_fcm.received)
    clock.set("2026-03-28T22:05:00+01:00")
    worker.run_pass()
    assert len(fake_fcm.received) == tried  # nothing went out at night
    after = {r.id: r for r in reminders(factory, p) if r.id in first}
    for r in after.values():
        assert r.attempts == 1 and r.last_error.startswith("UNAVAILABLE"), r.last_error
        if r.kind == "diary":
            assert (r.status, r.next_attempt_at) == ("expired", None)
        else:
            assert r.status == "planned"
            assert r.next_attempt_at == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    clock.set("2026-03-29T04:59:00+00:00")
    worker.run_pass()
    assert len(fake_fcm.received) == tried
    clock.set("2026-03-29T05:00:00+00:00")
    worker.run_pass()
    sent = [r for r in reminders(factory, p) if r.id in first and r.kind != "diary"]
    assert sent and {(r.status, r.attempts, r.last_error) for r in sent} == {("sent", 2, None)}
    assert len(fake_fcm.received) == tried + 1  # one bundled message for the event notices
