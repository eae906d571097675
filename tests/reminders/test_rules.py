"""Due instants and expiry in the participant's zone: DST nights and quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifications.rules import (
    EventRef,
    ParticipantPlan,
    ReminderRules,
    diary_days,
    diary_reminder,
    event_reminders,
    local_instant,
    out_of_quiet_hours,
    participant_reminders,
    worth_storing,
)

RULES = ReminderRules((3, 1), time(22, 0), time(7, 0), 36)
NO_QUIET = ReminderRules((3, 1), time(0, 0), time(0, 0), 36)
NEW_YORK = ZoneInfo("America/New_York")


def person(
    tz: str = "Asia/Shanghai", reminder: str = "09:00", diary: str = "20:00"
) -> ParticipantPlan:
    h, m = map(int, reminder.split(":"))
    dh, dm = map(int, diary.split(":"))
    return ParticipantPlan(1, tz, time(h, m), time(dh, dm), date(2026, 1, 1))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_event_reminders_three_and_one_day_before_at_reminder_time_local():
    event = EventRef(7, "infusion", date(2026, 4, 10))
    r3, r1 = event_reminders(person(), event, RULES)
    assert (r3.offset_days, r1.offset_days) == (3, 1)
    assert r3.due_at == utc("2026-04-07T09:00:00+08:00")
    assert r1.due_at == utc("2026-04-09T09:00:00+08:00")
    assert r3.expires_at == r1.expires_at == utc("2026-04-10T00:00:00+08:00")
    assert r3.target == "event:7:2026-04-10" and r3.kind == "infusion"


@pytest.mark.parametrize("kind,expected", [("lab_visit", "visit"), ("follow_up", "visit")])
def test_lab_visits_and_follow_ups_are_visit_reminders(kind, expected):
    (first, _) = event_reminders(person(), EventRef(1, kind, date(2026, 4, 10)), RULES)
    assert first.kind == expected


def test_spring_forward_keeps_the_local_time_and_moves_the_utc_instant():
    # New York springs forward on 2026-03-08 (02:00 EST → 03:00 EDT).
    before = event_reminders(
        person("America/New_York"), EventRef(1, "infusion", date(2026, 3, 8)), RULES
    )
    after = event_reminders(
        person("America/New_York"), EventRef(1, "infusion", date(2026, 3, 10)), RULES
    )
    r3_before, r1_before = before
    assert r3_before.due_at == utc("2026-03-05T14:00:00+00:00")  # 09:00 EST
    assert r1_before.due_at == utc("2026-03-07T14:00:00+00:00")  # 09:00 EST, the eve
    r3_after, r1_after = after
    assert r3_after.due_at == utc("2026-03-07T14:00:00+00:00")  # 09:00 EST, before the change
    assert r1_after.due_at == utc("2026-03-09T13:00:00+00:00")  # 09:00 EDT
    assert r1_after.due_at.astimezone(NEW_YORK).time() == time(9, 0)
    # The event day begins at local midnight of a 23-hour day.
    assert r1_before.expires_at == utc("2026-03-08T05:00:00+00:00")


def test_fall_back_keeps_the_local_time():
    # New York falls back on 2026-11-01 (02:00 EDT → 01:00 EST).
    _, r1 = event_reminders(
        person("America/New_York"), EventRef(1, "lab_visit", date(2026, 11, 2)), RULES
    )
    assert r1.due_at == utc("2026-11-01T14:00:00+00:00")  # 09:00 EST
    assert r1.due_at.astimezone(NEW_YORK).time() == time(9, 0)


def test_a_time_in_the_spring_forward_gap_is_moved_forward_by_the_gap():
    # 02:30 does not exist in New York on 2026-03-08: fold=0 reads it as 03:30 EDT.
    instant = local_instant(date(2026, 3, 8), time(2, 30), NEW_YORK)
    assert instant == utc("2026-03-08T07:30:00+00:00")
    assert instant.astimezone(NEW_YORK).time() == time(3, 30)


def test_a_time_that_happens_twice_is_the_first_occurrence():
    instant = local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK)
    assert instant == utc("2026-11-01T05:30:00+00:00")  # 01:30 EDT, not 01:30 EST
    assert instant.astimezone(NEW_YORK).utcoffset() == timedelta(hours=-4)


def test_gap_reminder_without_quiet_hours_is_late_by_the_gap_not_dropped():
    p = person("America/New_York", reminder="02:30")
    _, r1 = event_reminders(p, EventRef(1, "infusion", date(2026, 3, 9)), NO_QUIET)
    assert r1.due_at.astimezone(NEW_YORK) == datetime(2026, 3, 8, 3, 30, tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    "at,expected_day,expected_time",
    [
        (time(21, 59), date(2026, 5, 1), time(21, 59)),
        (time(22, 0), date(2026, 5, 2), time(7, 0)),
        (time(23, 30), date(2026, 5, 2), time(7, 0)),
        (time(0, 0), date(2026, 5, 1), time(7, 0)),
        (time(6, 59), date(2026, 5, 1), time(7, 0)),
        (time(7, 0), date(2026, 5, 1), time(7, 0)),
        (time(12, 0), date(2026, 5, 1), time(12, 0)),
    ],
)
def test_quiet_hours_move_to_seven(at, expected_day, expected_time):
    assert out_of_quiet_hours(date(2026, 5, 1), at, RULES) == (expected_day, expected_time)


def test_quiet_hours_within_one_day_are_supported():
    siesta = ReminderRules((3, 1), time(13, 0), time(15, 0), 36)
    assert out_of_quiet_hours(date(2026, 5, 1), time(14, 0), siesta) == (
        date(2026, 5, 1),
        time(15, 0),
    )
    assert out_of_quiet_hours(date(2026, 5, 1), time(23, 0), siesta) == (
        date(2026, 5, 1),
        time(23, 0),
    )


def test_reminder_time_in_quiet_hours_goes_out_next_morning_local():
    p = person(reminder="23:15")
    r3, r1 = event_reminders(p, EventRef(1, "infusion", date(2026, 4, 10)), RULES)
    assert r3.due_at == utc("2026-04-08T07:00:00+08:00")
    # The eve's 23:15 would move to 07:00 of the event day itself: by then it is useless.
    assert r1.due_at == utc("2026-04-10T07:00:00+08:00") and r1.due_at >= r1.expires_at
    kept = worth_storing(
        [r3, r1], utc("2026-04-01T00:00:00+08:00"), utc("2026-04-30T00:00:00+08:00")
    )
    assert kept == [r3]


def test_quiet_hours_on_a_dst_morning():
    # 05:00 falls inside quiet hours; 07:00 on the spring-forward day is 07:00 EDT.
    p = person("America/New_York", reminder="05:00")
    _, r1 = event_reminders(p, EventRef(1, "infusion", date(2026, 3, 9)), RULES)
    assert r1.due_at == utc("2026-03-08T11:00:00+00:00")
    assert r1.due_at.astimezone(NEW_YORK).time() == time(7, 0)


def test_diary_reminder_due_at_diary_time_and_expires_at_local_midnight():
    r = diary_reminder(person("Europe/London"), date(2026, 3, 29), RULES)  # UK springs forward
    assert r.due_at == utc("2026-03-29T20:00:00+01:00")
    assert r.expires_at == utc("2026-03-30T00:00:00+01:00")
    assert r.target == "diary:2026-03-29" and r.offset_days == 0 and r.kind == "diary"


def test_diary_days_follow_the_participants_zone():
    p = person("Pacific/Auckland")
    now = utc("2026-05-01T13:00:00+00:00")  # already 2 May in Auckland
    assert diary_days(p, now, now + timedelta(hours=2), RULES) == [date(2026, 5, 2)]


def test_diary_days_end_with_the_diary_period():
    p = ParticipantPlan(1, "Asia/Shanghai", time(9), time(20), date(2023, 1, 10))
    now = utc("2026-01-10T10:00:00+08:00")
    assert diary_days(p, now, now + timedelta(days=3), RULES) == [date(2026, 1, 10)]


def test_no_diary_reminder_for_a_day_with_an_entry():
    now = utc("2026-05-01T10:00:00+08:00")
    planned = participant_reminders(
        person(), [], {date(2026, 5, 1)}, now, now + timedelta(hours=24), RULES
    )
    assert planned == []
    planned = participant_reminders(person(), [], set(), now, now + timedelta(hours=24), RULES)
    assert [r.target for r in planned] == ["diary:2026-05-01"]


def test_expired_and_superseded_reminders_are_not_stored():
    now = utc("2026-04-09T10:00:00+08:00")  # after both reminders of a 10 April event
    r3, r1 = event_reminders(person(), EventRef(1, "infusion", date(2026, 4, 10)), RULES)
    assert worth_storing([r3, r1], now, now + timedelta(hours=24)) == [r1]
    later = utc("2026-04-10T00:00:00+08:00")
    assert worth_storing([r3, r1], later, later + timedelta(hours=24)) == []


def test_reminders_beyond_the_planning_horizon_wait():
    now = utc("2026-04-01T10:00:00+08:00")
    r3, r1 = event_reminders(person(), EventRef(1, "infusion", date(2026, 4, 10)), RULES)
    assert worth_storing([r3, r1], now, now + timedelta(hours=24)) == []
    assert worth_storing([r3, r1], now, now + timedelta(days=8)) == [r3, r1]
