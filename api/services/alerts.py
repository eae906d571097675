"""Alerts: review tasks for coordinators, raised once per cause (the database refuses twins)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update

from api.audit import Actor, record_audit, snapshot
from api.errors import Conflict
from api.extensions import db, dml_result
from api.models import AdverseEvent, Alert, Participant, Site
from api.models.diary import StoredEntry
from api.models.participant import ParticipantFacts
from api.services.rules import Refused
from api.services.upsert import insert_unless_taken
from api.settings import study as current_study

# Higher index = more severe; a symptom alert is not raised where a worse one exists.
_SYMPTOM_KINDS = ("symptom", "symptom_urgent")


def raise_alert(
    participant: ParticipantFacts,
    kind: str,
    dedupe_key: str,
    now: datetime,
    *,
    diary_entry_id: int | None = None,
    adverse_event_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> Alert | None:
    """Insert an alert unless one with the same `dedupe_key` exists; None if it did.

    The database settles a race with a concurrent writer (INSERT … ON CONFLICT DO
    NOTHING), leaving the caller's transaction intact.
    """
    row = {
        "participant_id": participant.id,
        "site_id": participant.site_id,
        "kind": kind,
        "status": "open",
        "dedupe_key": dedupe_key,
        "diary_entry_id": diary_entry_id,
        "adverse_event_id": adverse_event_id,
        "details": details,
        "created_at": now,
    }
    return insert_unless_taken(Alert, row, key=("dedupe_key",))


def symptom_alert_kind(discomfort_grade: int) -> str | None:
    study = current_study()
    if discomfort_grade >= study.symptom_urgent_grade:
        return "symptom_urgent"
    if discomfort_grade >= study.symptom_grade:
        return "symptom"
    return None


def symptom_alert_for_entry(
    entry: StoredEntry, participant: ParticipantFacts, now: datetime
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


def check_missed_diaries(now: datetime) -> int:
    """Raise a `missed_diary` alert for each run of missed diary days long enough to matter.

    A run is the consecutive days, up to each active participant's local yesterday, that
    have neither an entry nor an excuse; the run is named by its first day, so the same
    run raises one alert however often this check runs (the worker runs it every pass).
    Returns how many alerts were raised.
    """
    from api.services.compliance import missed_runs

    study = current_study()
    runs = missed_runs(now, study.missed_diary_days)
    if not runs:
        return 0
    participants = {
        p.id: p
        for p in db.session.scalars(
            select(Participant).where(Participant.id.in_([r.participant_id for r in runs]))
        )
    }
    raised = 0
    for participant_id, run_start, run in runs:
        alert = raise_alert(
            participants[participant_id],
            "missed_diary",
            f"missed_diary:{participant_id}:{run_start.isoformat()}",
            now,
            details={"run_start": run_start.isoformat(), "days_missed": run},
        )
        raised += alert is not None
    return raised


def acknowledge(
    actor: Actor,
    alert: Alert,
    *,
    note: str,
    decision: str | None,
    adverse_event_id: int | None,
    now: datetime,
) -> Alert:
    """Close an alert with the site's note (and, for a symptom alert, its decision).

    The update is conditional on the alert still being open, so of two coordinators
    acknowledging at once exactly one succeeds and the other gets 409.
    """
    _check_decision(alert, decision, adverse_event_id)
    before = snapshot(alert, ACK_FIELDS)
    done = dml_result(
        db.session.execute(
            update(Alert)
            .where(Alert.id == alert.id, Alert.status == "open")
            .values(
                status="acknowledged",
                acknowledged_at=now,
                acknowledged_by_staff_id=actor[1],
                note=note,
                decision=decision,
                adverse_event_id=adverse_event_id
                if adverse_event_id is not None
                else Alert.adverse_event_id,
            )
            .execution_options(synchronize_session=False)
        )
    ).rowcount
    if not done:
        raise Conflict("The alert was already acknowledged.", error="alert_already_acknowledged")
    db.session.refresh(alert)
    record_audit(
        actor,
        "alert.acknowledged",
        "alert",
        alert.id,
        participant_id=alert.participant_id,
        before=before,
        after=snapshot(alert, ACK_FIELDS),
        reason=note,
    )
    return alert


ACK_FIELDS = ("status", "decision", "adverse_event_id", "note", "acknowledged_at")


def _check_decision(alert: Alert, decision: str | None, adverse_event_id: int | None) -> None:
    if alert.status != "open":
        raise Conflict("The alert was already acknowledged.", error="alert_already_acknowledged")
    if alert.kind not in _SYMPTOM_KINDS:
        if decision is not None or adverse_event_id is not None:
            raise Refused(
                "decision", "Only symptom alerts take a decision.", error="decision_not_applicable"
            )
        return
    if decision is None:
        raise Refused(
            "decision",
            "A symptom alert needs the site's decision: not_adverse_event or "
            "adverse_event_recorded.",
            error="decision_required",
        )
    if decision == "not_adverse_event":
        if adverse_event_id is not None:
            raise Refused(
                "adverse_event_id",
                "Only with decision adverse_event_recorded.",
                error="adverse_event_not_applicable",
            )
        return
    if adverse_event_id is None:
        raise Refused(
            "adverse_event_id",
            "Name the adverse event that was recorded.",
            error="adverse_event_required",
        )
    owner = db.session.scalar(
        select(AdverseEvent.participant_id).where(AdverseEvent.id == adverse_event_id)
    )
    if owner != alert.participant_id:
        raise Refused(
            "adverse_event_id",
            "No such adverse event for this participant.",
            error="unknown_adverse_event",
        )


def alerts_query(
    site_ids: list[int] | None,
    *,
    status: str | None = None,
    kind: str | None = None,
    participant_id: int | None = None,
) -> Select[Alert, str, str]:
    """Alerts with the participant's study code and site code, newest first."""
    stmt = (
        select(Alert, Participant.study_code, Site.code)
        .join(Participant, Participant.id == Alert.participant_id)
        .join(Site, Site.id == Alert.site_id)
    )
    if site_ids is not None:
        stmt = stmt.where(Alert.site_id.in_(site_ids))
    if status:
        stmt = stmt.where(Alert.status == status)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    if participant_id is not None:
        stmt = stmt.where(Alert.participant_id == participant_id)
    return stmt.order_by(Alert.created_at.desc(), Alert.id.desc())


def open_alert_counts() -> dict[str, int]:
    """Open alerts by kind across all sites (what an operator's dashboard alerts on)."""
    rows = db.session.execute(
        select(Alert.kind, func.count()).where(Alert.status == "open").group_by(Alert.kind)
    )
    return {kind: count for kind, count in rows}
