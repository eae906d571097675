"""Re-planning reminders as a diff against the stored rows.

The reminder's identity is the unique key (participant, kind, target, offset): planning
twice inserts nothing twice (``ON CONFLICT DO NOTHING``), a moved event is a new target,
and rows already sent, failed or expired are never touched. Each pass:

1. expires planned rows whose use has passed (`expire_stale`): the event day began, the
   diary day ended, or a nearer reminder of the same event is due (after an FCM outage
   the "3 days before" still waiting must not arrive beside the "1 day before");
2. cancels planned rows that lost their reason — participant no longer active, event
   moved, completed or cancelled, diary entry arrived, day excused (`cancel_invalid`);
   both are set-based statements, cheap enough to run every pass;
3. walks active participants in id-ordered chunks (memory flat in their number), computes
   the wanted reminders in their zone (`notifications.rules`) and inserts the missing
   ones, moves the due time of planned ones whose participant changed a reminder time,
   and revives cancelled ones wanted again (an event moved back).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, and_, bindparam, exists, not_, or_, select, text, update
from sqlalchemy.orm import aliased

from api.extensions import db
from api.models import DiaryEntry, ExcusedDay, Participant, Reminder, ScheduleEvent
from notifications.bulk import insert_missing
from notifications.rules import (
    EventRef,
    ParticipantPlan,
    PlannedReminder,
    ReminderRules,
    parse_hhmm,
    participant_reminders,
)

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: one planner at a time; the other workers only dispatch.
PLANNER_LOCK_KEY = 0x5EED_D1A2
# The widest gap between UTC and local dates, for coarse date filters refined in Python.
_ZONE_SLACK = timedelta(days=2)


@dataclass
class PlanResult:
    expired: int = 0
    cancelled: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    moved: int = 0
    revived: int = 0
    participants: int = 0
    skipped: bool = False

    def describe(self) -> str:
        if self.skipped:
            return "planning skipped (another worker holds the planner lock)"
        cancelled = sum(self.cancelled.values())
        return (
            f"planned {self.inserted} new, {self.moved} moved, {self.revived} revived, "
            f"{cancelled} cancelled, {self.expired} expired "
            f"({self.participants} active participants)"
        )


def rules() -> ReminderRules:
    return ReminderRules.from_study(current_app.extensions["study"])


def plan_ahead() -> timedelta:
    return timedelta(hours=current_app.config["REMINDER_PLAN_AHEAD_HOURS"])


# --- step 1 and 2: set-based, every pass --------------------------------------------------


def superseded(now: datetime):
    """A nearer reminder of the same event is due: this one's notice is stale.

    The planner never stores such a reminder (`rules.worth_storing`); this catches one
    stored earlier and still waiting, e.g. retried through an FCM outage, so that the
    participant does not get two notices for one event at once. Its last error is kept.
    """
    nearer = aliased(Reminder)
    return exists().where(
        nearer.participant_id == Reminder.participant_id,
        nearer.kind == Reminder.kind,
        nearer.target == Reminder.target,
        nearer.offset_days < Reminder.offset_days,
        nearer.due_at <= now,
        nearer.status != "cancelled",
    )


def expire_stale(now: datetime) -> int:
    """Planned (or abandoned in-flight) reminders whose event day began or diary day
    ended, or that a nearer reminder of the same event superseded."""
    result = db.session.execute(
        update(Reminder)
        .where(
            or_(Reminder.expires_at <= now, superseded(now)),
            or_(
                Reminder.status == "planned",
                and_(Reminder.status == "sending", Reminder.lease_expires_at < now),
            ),
        )
        .values(status="expired", lease_owner=None, lease_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _participant_inactive():
    return exists().where(Participant.id == Reminder.participant_id, Participant.status != "active")


def _event_gone():
    return and_(
        Reminder.schedule_event_id.is_not(None),
        not_(
            exists().where(
                ScheduleEvent.id == Reminder.schedule_event_id,
                ScheduleEvent.status == "scheduled",
                ScheduleEvent.target_date == Reminder.target_date,
            )
        ),
    )


def _diary_done():
    return and_(
        Reminder.kind == "diary",
        or_(
            exists().where(
                DiaryEntry.participant_id == Reminder.participant_id,
                DiaryEntry.diary_date == Reminder.target_date,
            ),
            exists().where(
                ExcusedDay.participant_id == Reminder.participant_id,
                ExcusedDay.day == Reminder.target_date,
            ),
        ),
    )


# Why a planned reminder is cancelled; the reason is kept in `last_error` for coordinators.
CANCEL_REASONS = (
    ("participant_not_active", _participant_inactive),
    ("event_moved_or_done", _event_gone),
    ("diary_entry_present", _diary_done),
)


def still_wanted():
    """The SQL condition a reminder must meet to be sent (re-checked when claiming)."""
    return and_(*(not_(condition()) for _, condition in CANCEL_REASONS))


def cancel_invalid(now: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for reason, condition in CANCEL_REASONS:
        result = db.session.execute(
            update(Reminder)
            .where(Reminder.status == "planned", condition())
            .values(status="cancelled", last_error=reason, next_attempt_at=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            counts[reason] = result.rowcount
    return counts


# --- step 3: per chunk of active participants ---------------------------------------------


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
        yield [
            ParticipantPlan(
                r.id,
                r.timezone,
                parse_hhmm(r.reminder_time),
                parse_hhmm(r.diary_reminder_time),
                r.enrolled_on,
            )
            for r in rows
        ]
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


def _existing(lo: int, hi: int, now: datetime) -> dict[tuple[int, str, str, int], tuple]:
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


_REMINDER_KEY = ["participant_id", "kind", "target", "offset_days"]


def _insert_ignoring_duplicates(rows: list[dict]) -> int:
    """Insert the new reminders; a concurrent planner's rows win (``ON CONFLICT DO NOTHING``)."""
    return insert_missing(Reminder.__table__, _REMINDER_KEY, rows)


def _row(reminder: PlannedReminder, now: datetime) -> dict:
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


_REMINDERS = Reminder.__table__
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


def plan_chunk(
    participants: list[ParticipantPlan], now: datetime, until: datetime, result: PlanResult
) -> None:
    lo, hi = participants[0].id, participants[-1].id
    first_day, last_day = (now - _ZONE_SLACK).date(), (until + _ZONE_SLACK).date()
    max_offset = timedelta(days=max(rules().event_offsets_days, default=0))
    events = _events_by_participant(lo, hi, first_day, last_day + max_offset)
    done = _done_days(lo, hi, first_day, last_day)
    existing = _existing(lo, hi, now)
    study_rules = rules()
    new_rows, moves = [], []
    for participant in participants:
        wanted = participant_reminders(
            participant,
            events.get(participant.id, ()),
            done.get(participant.id, set()),
            now,
            until,
            study_rules,
        )
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
    result.inserted += _insert_ignoring_duplicates(new_rows)
    if moves:
        db.session.execute(_MOVE, [{k: v for k, v in m.items() if k != "status"} for m in moves])
        result.revived += sum(1 for m in moves if m["status"] == "cancelled")
        result.moved += sum(1 for m in moves if m["status"] == "planned")
    result.participants += len(participants)


def _try_planner_lock() -> Connection | None:
    """PostgreSQL: one planner at a time across workers; SQLite runs one worker anyway.

    The advisory lock lives on a connection of its own, held for the whole pass, because
    the session commits chunk by chunk and may change connections in between.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    conn = db.engine.connect()
    if conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": PLANNER_LOCK_KEY}):
        conn.commit()
        return conn
    conn.close()
    raise _PlannerBusy


class _PlannerBusy(Exception):
    pass


def _release_planner_lock(conn: Connection | None) -> None:
    if conn is not None:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PLANNER_LOCK_KEY})
        conn.commit()
        conn.close()


def tidy(now: datetime) -> PlanResult:
    """Steps 1 and 2 (expire, cancel), committed: each pass, by whichever worker is free.

    Claiming re-checks the same conditions, so a pass that skips this because another
    worker holds the planner lock sends nothing stale.
    """
    return _locked(now, full=False)


def plan(now: datetime, *, chunk_size: int | None = None) -> PlanResult:
    """A full planning pass (steps 1 to 3), committed chunk by chunk."""
    return _locked(now, full=True, chunk_size=chunk_size)


def _locked(now: datetime, *, full: bool, chunk_size: int | None = None) -> PlanResult:
    try:
        lock = _try_planner_lock()
    except _PlannerBusy:
        return PlanResult(skipped=True)
    try:
        result = PlanResult(expired=expire_stale(now), cancelled=cancel_invalid(now))
        db.session.commit()
        if full:
            size = chunk_size or current_app.config["REMINDER_PLAN_CHUNK"]
            until = now + plan_ahead()
            for participants in participant_chunks(size):
                plan_chunk(participants, now, until, result)
                db.session.commit()
            if result.inserted:
                # A nearer notice stored just now (the first pass after a long outage)
                # makes an older one still waiting stale: it expires in this pass.
                result.expired += expire_stale(now)
                db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _release_planner_lock(lock)


def preview(participant: Participant, now: datetime, days: int) -> list[PlannedReminder]:
    """What the participant would be sent from `now` for `days` days (nothing is written)."""
    until = now + timedelta(days=days)
    plan_row = ParticipantPlan(
        participant.id,
        participant.timezone,
        parse_hhmm(participant.reminder_time),
        parse_hhmm(participant.diary_reminder_time),
        participant.enrolled_on,
    )
    max_offset = timedelta(days=max(rules().event_offsets_days, default=0))
    events = _events_by_participant(
        participant.id,
        participant.id,
        (now - _ZONE_SLACK).date(),
        (until + _ZONE_SLACK).date() + max_offset,
    ).get(participant.id, [])
    done = _done_days(
        participant.id, participant.id, (now - _ZONE_SLACK).date(), (until + _ZONE_SLACK).date()
    ).get(participant.id, set())
    planned = participant_reminders(plan_row, events, done, now, until, rules())
    return sorted(planned, key=lambda r: (r.due_at, r.kind))
