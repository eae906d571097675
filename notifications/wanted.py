"""Step 3 of a planning pass: the reminders each participant should have, diffed against
the stored rows, a chunk of participants at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, bindparam, or_, select, update

from api.extensions import db
from api.models import DiaryEntry, ExcusedDay, Participant, Reminder, ScheduleEvent
from notifications.bulk import insert_missing
from notifications.rules import (
    EventRef,
    ParticipantPlan,
    PlannedReminder,
    parse_hhmm,
    participant_reminders,
)
from notifications.settings import PlanSettings

if TYPE_CHECKING:
    from notifications.planning import PlanResult

# The widest gap between UTC and local dates, for coarse date filters refined in Python.
_ZONE_SLACK = timedelta(days=2)


def _plan_row(r: Any) -> ParticipantPlan:
    return ParticipantPlan(
        r.id,
        r.timezone,
        parse_hhmm(r.reminder_time),
        parse_hhmm(r.diary_reminder_time),
        r.enrolled_on,
    )


def participant_chunks(size: int) -> Iterator[list[ParticipantPlan]]:
    """Active participants in id order, `size` at a time (keyset pagination)."""
    last_id = 0
    while True:
        rows = db.session.execute(
            select(
                Participant.id,
                Participant.timezone,
                Participant.reminder_time,
                Participant.diary_reminder_time,
                Participant.enrolled_on,
            )
            .where(Participant.status == "active", Participant.id > last_id)
            .order_by(Participant.id)
            .limit(size)
        ).all()
        if not rows:
            return
        yield [_plan_row(r) for r in rows]
        last_id = rows[-1].id


def _events_by_participant(lo: int, hi: int, first: date, last: date) -> dict[int, list[EventRef]]:
    rows = db.session.execute(
        select(
            ScheduleEvent.id,
            ScheduleEvent.participant_id,
            ScheduleEvent.kind,
            ScheduleEvent.target_date,
        ).where(
            ScheduleEvent.participant_id.between(lo, hi),
            ScheduleEvent.status == "scheduled",
            ScheduleEvent.target_date.between(first, last),
        )
    )
    events: dict[int, list[EventRef]] = defaultdict(list)
    for r in rows:
        events[r.participant_id].append(EventRef(r.id, r.kind, r.target_date))
    return events


def _done_days(lo: int, hi: int, first: date, last: date) -> dict[int, set[date]]:
    """Local days that need no diary reminder: an entry exists or the day is excused."""
    done: dict[int, set[date]] = defaultdict(set)
    for model, day_column in ((DiaryEntry, DiaryEntry.diary_date), (ExcusedDay, ExcusedDay.day)):
        rows = db.session.execute(
            select(model.participant_id, day_column).where(
                model.participant_id.between(lo, hi), day_column.between(first, last)
            )
        )
        for participant_id, day in rows:
            done[participant_id].add(day)
    return done


def _existing(lo: int, hi: int, now: datetime) -> dict[tuple[int, str, str, int], Any]:
    rows = db.session.execute(
        select(
            Reminder.id,
            Reminder.participant_id,
            Reminder.kind,
            Reminder.target,
            Reminder.offset_days,
            Reminder.status,
            Reminder.due_at,
            Reminder.expires_at,
        ).where(Reminder.participant_id.between(lo, hi), Reminder.expires_at > now)
    )
    return {(r.participant_id, r.kind, r.target, r.offset_days): r for r in rows}


# `__table__` is declared a FromClause; a mapped class's is its Table.
_REMINDERS = cast(Table, Reminder.__table__)
_REMINDER_KEY = ["participant_id", "kind", "target", "offset_days"]


def _insert_ignoring_duplicates(rows: list[dict[str, Any]]) -> int:
    """Insert the new reminders; a concurrent planner's rows win (``ON CONFLICT DO NOTHING``)."""
    return insert_missing(_REMINDERS, _REMINDER_KEY, rows)


def _row(reminder: PlannedReminder, now: datetime) -> dict[str, Any]:
    return {
        "participant_id": reminder.participant_id,
        "kind": reminder.kind,
        "target": reminder.target,
        "schedule_event_id": reminder.schedule_event_id,
        "target_date": reminder.target_date,
        "offset_days": reminder.offset_days,
        "due_at": reminder.due_at,
        "expires_at": reminder.expires_at,
        "status": "planned",
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


# Core (not ORM) statements: executed with a list of parameter sets (executemany).
_MOVE = (
    update(_REMINDERS)
    .where(
        _REMINDERS.c.id == bindparam("rid"),
        or_(_REMINDERS.c.status == "planned", _REMINDERS.c.status == "cancelled"),
    )
    .values(
        status="planned",
        due_at=bindparam("due"),
        expires_at=bindparam("expires"),
        last_error=None,
        updated_at=bindparam("now"),
    )
)


def _diff(
    wanted: list[PlannedReminder], existing: dict[Any, Any], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows to insert, and the stored rows to move or revive (with their old status)."""
    new_rows, moves = [], []
    for reminder in wanted:
        row = existing.get(reminder.key)
        if row is None:
            new_rows.append(_row(reminder, now))
        elif row.status == "cancelled" or (
            row.status == "planned"
            and (row.due_at != reminder.due_at or row.expires_at != reminder.expires_at)
        ):
            moves.append(
                {
                    "rid": row.id,
                    "due": reminder.due_at,
                    "expires": reminder.expires_at,
                    "now": now,
                    "status": row.status,
                }
            )
    return new_rows, moves


def plan_chunk(
    participants: list[ParticipantPlan],
    now: datetime,
    until: datetime,
    result: PlanResult,
    settings: PlanSettings,
) -> None:
    """Insert, move and revive the chunk's reminders due from `now` to `until`."""
    lo, hi = participants[0].id, participants[-1].id
    first_day, last_day = (now - _ZONE_SLACK).date(), (until + _ZONE_SLACK).date()
    events = _events_by_participant(lo, hi, first_day, last_day + settings.max_offset)
    done = _done_days(lo, hi, first_day, last_day)
    existing = _existing(lo, hi, now)
    new_rows: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    for participant in participants:
        wanted = participant_reminders(
            participant,
            events.get(participant.id, ()),
            done.get(participant.id, set()),
            now,
            until,
            settings.rules,
        )
        rows, moved = _diff(wanted, existing, now)
        new_rows += rows
        moves += moved
    result.inserted += _insert_ignoring_duplicates(new_rows)
    if moves:
        db.session.execute(_MOVE, [{k: v for k, v in m.items() if k != "status"} for m in moves])
        result.revived += sum(1 for m in moves if m["status"] == "cancelled")
        result.moved += sum(1 for m in moves if m["status"] == "planned")
    result.participants += len(participants)


def preview(
    participant: Participant, now: datetime, days: int, settings: PlanSettings
) -> list[PlannedReminder]:
    """What the participant would be sent from `now` for `days` days (nothing is written)."""
    until = now + timedelta(days=days)
    first, last = (now - _ZONE_SLACK).date(), (until + _ZONE_SLACK).date()
    pid = participant.id
    events = _events_by_participant(pid, pid, first, last + settings.max_offset).get(pid, [])
    done = _done_days(pid, pid, first, last).get(pid, set())
    planned = participant_reminders(
        _plan_row(participant), events, done, now, until, settings.rules
    )
    return sorted(planned, key=lambda r: (r.due_at, r.kind))
