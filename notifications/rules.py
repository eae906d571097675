"""When a reminder is due and when it stops being useful: pure functions of local time.

Every instant is computed in the participant's own zone with `zoneinfo`, so a DST change
moves the UTC instant and never the local time the participant chose. For local times the
zone does not define, the choice is PEP 495's ``fold=0``:

- a time inside a spring-forward gap (02:30 on the night clocks jump 02:00 → 03:00) is read
  with the offset in force before the jump, so it lands as far after the gap as it was into
  it (03:30): the reminder is late by the gap, never skipped;
- a time that happens twice (01:30 on the night clocks fall back) is the first occurrence,
  so a reminder never waits an extra hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from api.services.schedule import add_months
from api.study import StudyConfig

EVENT_REMINDER_KINDS = {"infusion": "infusion", "lab_visit": "visit", "follow_up": "visit"}
MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class ReminderRules:
    """The study's reminder settings (SPEC §1), read once from the study configuration."""

    event_offsets_days: tuple[int, ...]
    quiet_start: time
    quiet_end: time
    diary_months: int

    @classmethod
    def from_study(cls, study: StudyConfig) -> ReminderRules:
        return cls(
            event_offsets_days=tuple(study.event_offsets_days),
            quiet_start=study.quiet_hours_start,
            quiet_end=study.quiet_hours_end,
            diary_months=study.diary_months,
        )


@dataclass(frozen=True)
class ParticipantPlan:
    """What planning needs to know about a participant (a row, not an ORM object)."""

    id: int
    timezone: str
    reminder_time: time
    diary_reminder_time: time
    enrolled_on: date


@dataclass(frozen=True)
class EventRef:
    id: int
    kind: str  # infusion | lab_visit | follow_up
    target_date: date


@dataclass(frozen=True)
class PlannedReminder:
    participant_id: int
    kind: str  # infusion | visit | diary
    target: str
    schedule_event_id: int | None
    target_date: date
    offset_days: int
    due_at: datetime
    expires_at: datetime

    @property
    def key(self) -> tuple[int, str, str, int]:
        return (self.participant_id, self.kind, self.target, self.offset_days)


@lru_cache(maxsize=2048)
def parse_hhmm(value: str | time) -> time:
    if isinstance(value, time):
        return value
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=65536)
def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of local `day` `at` in `zone` (gaps and folds: see the module doc)."""
    return datetime.combine(day, at).replace(tzinfo=zone, fold=0).astimezone(UTC)


def out_of_quiet_hours(day: date, at: time, rules: ReminderRules) -> tuple[date, time]:
    """Move a local time inside quiet hours to their end (the next morning after the start)."""
    start, end = rules.quiet_start, rules.quiet_end
    if start == end:
        return day, at
    if start > end:  # the usual case, the window spans midnight (22:00-07:00)
        if at >= start:
            return day + timedelta(days=1), end
        if at < end:
            return day, end
        return day, at
    if start <= at < end:
        return day, end
    return day, at


def event_target(event: EventRef) -> str:
    """A moved event is a new target, so its old reminders no longer match."""
    return f"event:{event.id}:{event.target_date.isoformat()}"


def diary_target(day: date) -> str:
    return f"diary:{day.isoformat()}"


def event_reminders(
    participant: ParticipantPlan, event: EventRef, rules: ReminderRules
) -> Iterator[PlannedReminder]:
    """One reminder per configured offset; each expires when the event's day begins."""
    zone = ZoneInfo(participant.timezone)
    expires = local_instant(event.target_date, MIDNIGHT, zone)
    for offset in rules.event_offsets_days:
        day, at = out_of_quiet_hours(
            event.target_date - timedelta(days=offset), participant.reminder_time, rules
        )
        yield PlannedReminder(
            participant_id=participant.id,
            kind=EVENT_REMINDER_KINDS[event.kind],
            target=event_target(event),
            schedule_event_id=event.id,
            target_date=event.target_date,
            offset_days=offset,
            due_at=local_instant(day, at, zone),
            expires_at=expires,
        )


def diary_reminder(
    participant: ParticipantPlan, day: date, rules: ReminderRules
) -> PlannedReminder:
    """Today's nudge at the diary time; useless once the diary day has ended."""
    zone = ZoneInfo(participant.timezone)
    local_day, at = out_of_quiet_hours(day, participant.diary_reminder_time, rules)
    return PlannedReminder(
        participant_id=participant.id,
        kind="diary",
        target=diary_target(day),
        schedule_event_id=None,
        target_date=day,
        offset_days=0,
        due_at=local_instant(local_day, at, zone),
        expires_at=local_instant(day + timedelta(days=1), MIDNIGHT, zone),
    )


def diary_days(
    participant: ParticipantPlan, now: datetime, until: datetime, rules: ReminderRules
) -> list[date]:
    """The participant's local diary days from today to the day of `until`, within the diary."""
    zone = ZoneInfo(participant.timezone)
    first = max(now.astimezone(zone).date(), participant.enrolled_on)
    last = min(
        until.astimezone(zone).date(), diary_end(participant.enrolled_on, rules.diary_months)
    )
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@lru_cache(maxsize=4096)
def diary_end(enrolled_on: date, months: int) -> date:
    """The last diary day: `months` calendar months after enrolment (clamped to month end)."""
    return add_months(enrolled_on, months)


def worth_storing(
    reminders: Iterable[PlannedReminder], now: datetime, until: datetime
) -> list[PlannedReminder]:
    """The reminders to store at `now`: unexpired, due before `until`, not superseded.

    A reminder already due is superseded when a later reminder of the same target is due
    too (an event moved to the day after tomorrow: its "3 days before" is moot once "1 day
    before" is also due), so a participant never gets two notices at once for one event.
    """
    kept = [
        r for r in reminders if r.expires_at > now and r.due_at <= until and r.due_at < r.expires_at
    ]
    latest_due: dict[tuple[int, str, str], datetime] = {}
    for r in kept:
        if r.due_at <= now:
            key = (r.participant_id, r.kind, r.target)
            latest_due[key] = max(latest_due.get(key, r.due_at), r.due_at)
    return [
        r
        for r in kept
        if r.due_at > now or latest_due[(r.participant_id, r.kind, r.target)] == r.due_at
    ]


def participant_reminders(
    participant: ParticipantPlan,
    events: Iterable[EventRef],
    entry_days: set[date],
    now: datetime,
    until: datetime,
    rules: ReminderRules,
) -> list[PlannedReminder]:
    """Every reminder an active participant should have stored between `now` and `until`.

    `entry_days` are the local days that already have a diary entry (or are excused):
    they get no diary reminder.
    """
    candidates: list[PlannedReminder] = []
    for event in events:
        candidates.extend(event_reminders(participant, event, rules))
    for day in diary_days(participant, now, until, rules):
        if day not in entry_days:
            candidates.append(diary_reminder(participant, day, rules))
    return worth_storing(candidates, now, until)
