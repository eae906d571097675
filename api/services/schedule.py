"""The protocol schedule: infusions, lab visits and follow-up contacts from enrolment."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta
from sqlalchemy import select, update

from api.extensions import db
from api.models import Participant, ScheduleEvent
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
    return db.session.execute(
        update(ScheduleEvent)
        .where(
            ScheduleEvent.participant_id == participant_id,
            ScheduleEvent.status == "scheduled",
            ScheduleEvent.target_date >= from_day,
        )
        .values(status="cancelled", updated_at=now, version=ScheduleEvent.version + 1)
    ).rowcount


def events_of(participant_id: int) -> list[ScheduleEvent]:
    return list(
        db.session.scalars(
            select(ScheduleEvent)
            .where(ScheduleEvent.participant_id == participant_id)
            .order_by(ScheduleEvent.target_date, ScheduleEvent.kind)
        )
    )
