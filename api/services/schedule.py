"""The protocol schedule: infusions, lab visits and follow-up contacts from enrolment."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import Select, or_, select, update

from api.audit import Actor, record_audit, snapshot
from api.errors import Conflict, NotFound
from api.extensions import db, dml_result
from api.models import Participant, ScheduleEvent
from api.services.rules import Refused
from api.study import StudyConfig


def add_months(start: date, months: int) -> date:
    """Calendar months after `start`, clamped to month end (Jan 31 + 1 month = Feb 28/29)."""
    return start + relativedelta(months=months)


def protocol_events(
    participant: Participant, study: StudyConfig, now: datetime
) -> list[ScheduleEvent]:
    """The events the study configuration gives this participant's arm, as new rows.

    Called once at enrolment: a later change of the configuration never rewrites them.
    """
    window = timedelta(days=study.visit_window_days)
    events = []
    for plan in study.events:
        if participant.arm not in plan.arms:
            continue
        for number, month in enumerate(plan.months, start=1):
            target = add_months(participant.enrolled_on, month)
            events.append(
                ScheduleEvent(
                    participant_id=participant.id,
                    kind=plan.kind,
                    number=number,
                    month=month,
                    planned_date=target,
                    target_date=target,
                    window_start=target - window,
                    window_end=target + window,
                    status="scheduled",
                    updated_at=now,
                )
            )
    return events


def cancel_future_events(participant_id: int, from_day: date, now: datetime) -> int:
    """End the events not yet due (withdrawal, death, completion); returns how many."""
    return dml_result(
        db.session.execute(
            update(ScheduleEvent)
            .where(
                ScheduleEvent.participant_id == participant_id,
                ScheduleEvent.status == "scheduled",
                ScheduleEvent.target_date >= from_day,
            )
            .values(status="cancelled", updated_at=now, version=ScheduleEvent.version + 1)
        )
    ).rowcount


def events_of(participant_id: int) -> list[ScheduleEvent]:
    return list(
        db.session.scalars(
            select(ScheduleEvent)
            .where(ScheduleEvent.participant_id == participant_id)
            .order_by(ScheduleEvent.target_date, ScheduleEvent.kind)
        )
    )


SCHEDULE_AUDIT_FIELDS = ("target_date", "status", "actual_date", "reason")


def event_for(participant_id: int, event_id: int, *, lock: bool = False) -> ScheduleEvent:
    """The participant's event (locked for update when asked); 404 otherwise."""
    stmt = select(ScheduleEvent).where(
        ScheduleEvent.id == event_id, ScheduleEvent.participant_id == participant_id
    )
    if lock:
        stmt = stmt.with_for_update()
    event = db.session.scalar(stmt)
    if event is None:
        raise NotFound("No such schedule event.", error="schedule_event_not_found")
    return event


def events_query(participant_id: int) -> Select[ScheduleEvent]:
    return (
        select(ScheduleEvent)
        .where(ScheduleEvent.participant_id == participant_id)
        .order_by(ScheduleEvent.target_date, ScheduleEvent.kind, ScheduleEvent.number)
    )


def upcoming_query(participant_id: int, today: date) -> Select[ScheduleEvent]:
    """Events still to come: scheduled, and their target or window not yet past."""
    return events_query(participant_id).where(
        ScheduleEvent.status == "scheduled",
        or_(ScheduleEvent.target_date >= today, ScheduleEvent.window_end >= today),
    )


def update_event(
    actor: Actor,
    participant: Participant,
    event: ScheduleEvent,
    changes: dict[str, Any],
    reason: str | None,
    today: date,
    now: datetime,
) -> ScheduleEvent:
    """Reschedule an event, record its actual date, or mark it missed; audited.

    - `target_date`: a new date (today or later) for a scheduled event of an active
      participant, inside or outside the protocol window, always with a reason.
    - `actual_date`: the day it took place (enrolment to today): status `completed`.
    - `status: missed`: it did not take place, with a reason.
    The protocol window (`window_start`/`window_end`) always stays around the planned
    date, so `out_of_window` shows a deviation.
    """
    status = changes.get("status")
    target = changes.get("target_date")
    actual = changes.get("actual_date")
    if target is None and actual is None and status is None:
        return event  # nothing to change (a reason alone changes nothing)
    _check_change(participant, event, status, target, actual, reason, today)
    before = snapshot(event, SCHEDULE_AUDIT_FIELDS)
    _apply_change(event, status, target, actual, reason)
    after = snapshot(event, SCHEDULE_AUDIT_FIELDS)
    if after == before:
        return event
    event.updated_at = now
    event.version += 1
    record_audit(
        actor,
        "schedule_event.updated",
        "schedule_event",
        event.id,
        participant_id=participant.id,
        before=before,
        after=after,
        reason=reason,
    )
    return event


def _check_change(
    participant: Participant,
    event: ScheduleEvent,
    status: str | None,
    target: date | None,
    actual: date | None,
    reason: str | None,
    today: date,
) -> None:
    """Refuse a change the protocol does not allow (one kind of change per request)."""
    if target is not None and (actual is not None or status is not None):
        raise Refused(
            "target_date",
            "Reschedule on its own, then record what happened.",
            error="one_change_at_a_time",
        )
    if event.status == "cancelled":
        raise Conflict(
            "The event was cancelled (the participant left the study).",
            error="schedule_event_cancelled",
        )
    if target is not None:
        _check_reschedule(participant, event, target, reason, today)
    if actual is not None:
        _check_actual(participant, status, actual, today)
    if status == "missed":
        if not reason:
            raise Refused("reason", "Say why the event was missed.", error="reason_required")
        if event.status == "completed":
            raise Refused("status", "The event already took place.", error="event_completed")
    if status == "completed" and actual is None and event.actual_date is None:
        raise Refused(
            "actual_date", "Give the day the event took place.", error="actual_date_required"
        )


def _check_actual(participant: Participant, status: str | None, actual: date, today: date) -> None:
    if actual > today:
        raise Refused("actual_date", "Must not be in the future.", error="date_in_future")
    if actual < participant.enrolled_on:
        raise Refused("actual_date", "Must not be before enrolment.", error="before_enrolment")
    if status == "missed":
        raise Refused(
            "status", "An event with an actual date took place.", error="event_took_place"
        )


def _apply_change(
    event: ScheduleEvent,
    status: str | None,
    target: date | None,
    actual: date | None,
    reason: str | None,
) -> None:
    if target is not None and target != event.target_date:
        # Reminders follow on the planner's next pass: it cancels those of the old date.
        event.target_date = target
    if actual is not None:
        event.actual_date = actual
        event.status = "completed"
    elif status == "missed":
        event.status = "missed"
        event.actual_date = None
    if reason:
        event.reason = reason


def _check_reschedule(
    participant: Participant, event: ScheduleEvent, target: date, reason: str | None, today: date
) -> None:
    if not participant.is_active:
        raise Conflict(
            "Only an active participant's events can be rescheduled.",
            error="participant_inactive",
        )
    if event.status != "scheduled":
        raise Conflict(
            f"The event is {event.status}; only scheduled events move.",
            error="schedule_event_not_scheduled",
        )
    if target < today:
        raise Refused("target_date", "Must be today or later.", error="date_in_past")
    if not reason:
        raise Refused("reason", "Say why the event is rescheduled.", error="reason_required")


def out_of_window(event: ScheduleEvent) -> bool:
    """Whether the event's date (actual if it took place, else target) is off the window."""
    day = event.actual_date or event.target_date
    return not (event.window_start <= day <= event.window_end)
