"""Steps 1 and 2 of a planning pass: expire and cancel stored reminders, set-based."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, not_, or_, update
from sqlalchemy.orm import aliased

from api.extensions import db, dml_result
from api.models import DiaryEntry, ExcusedDay, Participant, Reminder, ScheduleEvent


def superseded(now: datetime) -> Any:
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
    result = dml_result(
        db.session.execute(
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
    )
    return result.rowcount or 0


def _participant_inactive() -> Any:
    return exists().where(Participant.id == Reminder.participant_id, Participant.status != "active")


def _event_gone() -> Any:
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


def _diary_done() -> Any:
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


def still_wanted() -> Any:
    """The SQL condition a reminder must meet to be sent (re-checked when claiming)."""
    return and_(*(not_(condition()) for _, condition in CANCEL_REASONS))


def cancel_invalid(now: datetime) -> dict[str, int]:
    """Cancel the planned reminders that lost their reason, counted by reason."""
    counts: dict[str, int] = {}
    for reason, condition in CANCEL_REASONS:
        result = dml_result(
            db.session.execute(
                update(Reminder)
                .where(Reminder.status == "planned", condition())
                .values(status="cancelled", last_error=reason, next_attempt_at=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        )
        if result.rowcount:
            counts[reason] = result.rowcount
    return counts
