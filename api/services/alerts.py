"""Alerts: review tasks for coordinators, raised once per cause (the database refuses twins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.extensions import db
from api.models import Alert, DiaryEntry, Participant

# Higher index = more severe; a symptom alert is not raised where a worse one exists.
_SYMPTOM_KINDS = ("symptom", "symptom_urgent")


def raise_alert(
    participant: Participant,
    kind: str,
    dedupe_key: str,
    now: datetime,
    *,
    diary_entry_id: int | None = None,
    adverse_event_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Alert | None:
    """Insert an alert unless one with the same `dedupe_key` exists; None if it did.

    Runs in a savepoint, so a lost race with a concurrent writer leaves the caller's
    transaction intact.
    """
    alert = Alert(
        participant_id=participant.id,
        site_id=participant.site_id,
        kind=kind,
        status="open",
        dedupe_key=dedupe_key,
        diary_entry_id=diary_entry_id,
        adverse_event_id=adverse_event_id,
        details=details,
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(alert)
    except IntegrityError:
        return None
    return alert


def symptom_alert_kind(discomfort_grade: int) -> str | None:
    study = current_app.extensions["study"]
    if discomfort_grade >= study.symptom_urgent_grade:
        return "symptom_urgent"
    if discomfort_grade >= study.symptom_grade:
        return "symptom"
    return None


def symptom_alert_for_entry(
    entry: DiaryEntry, participant: Participant, now: datetime
) -> Alert | None:
    """Raise the alert an entry's discomfort grade calls for, in the entry's transaction.

    Amending the grade up raises the more severe alert; the same or a lower grade never
    raises a second one for the same entry.
    """
    kind = symptom_alert_kind(entry.discomfort_grade)
    if kind is None:
        return None
    db.session.flush()
    existing = set(
        db.session.scalars(
            select(Alert.kind).where(
                Alert.diary_entry_id == entry.id, Alert.kind.in_(_SYMPTOM_KINDS)
            )
        )
    )
    if any(_SYMPTOM_KINDS.index(k) >= _SYMPTOM_KINDS.index(kind) for k in existing):
        return None
    return raise_alert(
        participant,
        kind,
        f"{kind}:entry:{entry.id}",
        now,
        diary_entry_id=entry.id,
        details={
            "discomfort_grade": entry.discomfort_grade,
            "diary_date": entry.diary_date.isoformat(),
        },
    )
