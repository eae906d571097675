"""Excused diary days (a hospital stay): out of the expected count, never alerted on."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite

from api.audit import Actor, record_audit
from api.clock import utcnow
from api.extensions import db
from api.models import ExcusedDay, Participant
from api.services.compliance import study_config
from api.services.rules import Refused
from api.services.schedule import add_months

MAX_RANGE_DAYS = 366


def _insert() -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the dialect at hand."""
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(ExcusedDay).on_conflict_do_nothing(
        index_elements=["participant_id", "day"]
    )


def _check_range(participant: Participant, first: date, last: date) -> None:
    """Refuse a reversed or too long range, or one outside the participant's diary period."""
    if last < first:
        raise Refused("to", "Must not be before 'from'.", error="date_range_reversed")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise Refused("to", f"At most {MAX_RANGE_DAYS} days at once.", error="date_range_too_long")
    if first < participant.enrolled_on:
        raise Refused("from", "Must not be before the enrolment date.", error="before_enrolment")
    diary_end = add_months(participant.enrolled_on, study_config().diary_months)
    if last > diary_end:
        raise Refused(
            "to", "Must be within the diary period (to month 36).", error="after_diary_period"
        )


def excuse_days(
    actor: Actor, participant: Participant, first: date, last: date, reason: str
) -> tuple[list[ExcusedDay], int]:
    """Excuse every day of [first, last]; days already excused stay as they were.

    Returns the excused days of the range and how many were new. Concurrent requests
    for overlapping ranges are settled by the unique (participant, day) constraint.
    """
    _check_range(participant, first, last)
    now = utcnow()
    rows = [
        {
            "participant_id": participant.id,
            "day": first + timedelta(days=offset),
            "reason": reason,
            "created_by_staff_id": actor[1],
            "created_at": now,
        }
        for offset in range((last - first).days + 1)
    ]
    # RETURNING names only the rows this statement inserted, so concurrent requests
    # for overlapping ranges each audit exactly the days they added.
    added = sorted(db.session.scalars(_insert().values(rows).returning(ExcusedDay.day)))
    excused = list(
        db.session.scalars(
            select(ExcusedDay)
            .where(
                ExcusedDay.participant_id == participant.id,
                ExcusedDay.day >= first,
                ExcusedDay.day <= last,
            )
            .order_by(ExcusedDay.day)
        )
    )
    if added:
        record_audit(
            actor,
            "excused_days.added",
            "participant",
            participant.id,
            participant_id=participant.id,
            after={"from": first, "to": last, "days": added},
            reason=reason,
        )
    return excused, len(added)


def excused_days_of(participant_id: int) -> Select[ExcusedDay]:
    return (
        select(ExcusedDay)
        .where(ExcusedDay.participant_id == participant_id)
        .order_by(ExcusedDay.day)
    )
