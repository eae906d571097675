"""Adverse events recorded by sites: seriousness, the 24-hour reporting clock, audit."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from api.audit import Actor, record_audit, snapshot
from api.clock import utcnow
from api.errors import Conflict, NotFound
from api.extensions import db
from api.models import AdverseEvent, DiaryEntry, Participant
from api.services.alerts import raise_alert
from api.services.participants import local_today
from api.services.rules import Refused
from api.settings import study

AUDITED_FIELDS = (
    "term",
    "onset_date",
    "grade",
    "seriousness",
    "relation_to_infusion",
    "outcome",
    "diary_entry_id",
    "awareness_at",
    "reported_at",
    "description",
)


def report_deadline(ae: AdverseEvent) -> datetime | None:
    """When a serious event must have reached the sponsor: awareness + the configured hours."""
    if not ae.serious or ae.awareness_at is None:
        return None
    return ae.awareness_at + timedelta(hours=study().sae_report_hours)


def is_overdue(ae: AdverseEvent, now: datetime) -> bool:
    deadline = report_deadline(ae)
    return deadline is not None and ae.reported_at is None and now > deadline


def _validate(participant: Participant, values: dict[str, Any], now: datetime) -> None:
    """Rules across fields that a schema cannot see: dates, the diary entry's owner."""
    today = local_today(participant, now)
    onset = values.get("onset_date")
    if onset is not None and onset > today:
        raise Refused("onset_date", "Must not be in the future.", error="date_in_future")
    if onset is not None and onset < participant.enrolled_on:
        raise Refused("onset_date", "Must not be before enrolment.", error="before_enrolment")
    for field in ("awareness_at", "reported_at"):
        if values.get(field) is not None and values[field] > now + timedelta(minutes=5):
            raise Refused(field, "Must not be in the future.", error="date_in_future")
    aware, reported = values.get("awareness_at"), values.get("reported_at")
    if aware and reported and reported < aware:
        raise Refused(
            "reported_at",
            "Must not be before the site became aware.",
            error="reported_before_awareness",
        )
    entry_id = values.get("diary_entry_id")
    if entry_id is not None:
        owner = db.session.scalar(
            select(DiaryEntry.participant_id).where(DiaryEntry.id == entry_id)
        )
        if owner != participant.id:
            raise Refused(
                "diary_entry_id",
                "No such diary entry for this participant.",
                error="unknown_diary_entry",
            )


def _after_change(ae: AdverseEvent, participant: Participant, now: datetime) -> None:
    """A serious event starts its reporting clock and raises an urgent alert (once)."""
    if not ae.serious:
        return
    if ae.awareness_at is None:
        ae.awareness_at = now
    db.session.flush()
    deadline = report_deadline(ae)
    assert deadline is not None  # serious, with its awareness time just set
    raise_alert(
        participant,
        "serious_adverse_event",
        f"serious_adverse_event:{ae.id}",
        now,
        adverse_event_id=ae.id,
        diary_entry_id=ae.diary_entry_id,
        details={
            "term": ae.term,
            "seriousness": list(ae.seriousness),
            "report_deadline": deadline.isoformat(),
        },
    )


def request_hash(values: dict[str, Any]) -> str:
    """SHA-256 of a create request's values in canonical form: keys sorted, absent and
    null alike, criteria as a sorted set, days ISO, instants in UTC. Two bodies that mean
    the same record hash alike, whatever their key order, spacing or offsets."""
    canonical: dict[str, Any] = {}
    for name, value in values.items():
        if name == "seriousness":
            value = sorted(set(value or [])) or None
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, date):
            value = value.isoformat()
        canonical[name] = value
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _by_key(participant: Participant, key: uuid.UUID) -> AdverseEvent | None:
    return db.session.scalar(
        select(AdverseEvent).where(
            AdverseEvent.participant_id == participant.id, AdverseEvent.idempotency_key == key
        )
    )


def _replayed(stored: AdverseEvent, digest: str) -> AdverseEvent:
    """The stored record for a resent request; another body under the same key is a 409."""
    if stored.request_hash != digest:
        message = "This Idempotency-Key was already used with another request body."
        raise Conflict(
            message, error="idempotency_key_reused", errors={"Idempotency-Key": [message]}
        )
    return stored


def record_once(
    actor: Actor, participant: Participant, values: dict[str, Any], key: uuid.UUID
) -> tuple[AdverseEvent, bool]:
    """Record an adverse event once per (participant, key): (record, created).

    A stored key is answered before the rules run (a retry gets its record even if the
    rules would now say otherwise). Two requests racing with one key are settled by the
    unique index: the loser's insert fails inside its savepoint and it answers the
    winner's record, compared by body hash like any replay.
    """
    digest = request_hash(values)
    stored = _by_key(participant, key)
    if stored is not None:
        return _replayed(stored, digest), False
    try:
        return record(actor, participant, values, idempotency=(key, digest)), True
    except IntegrityError:
        stored = _by_key(participant, key)
        if stored is None:
            raise
        return _replayed(stored, digest), False


def record(
    actor: Actor,
    participant: Participant,
    values: dict[str, Any],
    *,
    idempotency: tuple[uuid.UUID, str] | None = None,
) -> AdverseEvent:
    """Record a new adverse event for `participant` (with its Idempotency-Key and body
    hash when given: the insert then runs in a savepoint, so losing the key's race
    leaves the session usable)."""
    now = utcnow()
    _validate(participant, values, now)
    values = {**values, "seriousness": sorted(set(values.get("seriousness") or []))}
    key, digest = idempotency or (None, None)
    ae = AdverseEvent(
        participant_id=participant.id,
        created_at=now,
        updated_at=now,
        created_by_staff_id=actor[1],
        version=1,
        idempotency_key=key,
        request_hash=digest,
        **values,
    )
    if key is None:
        db.session.add(ae)
    else:
        with db.session.begin_nested():
            db.session.add(ae)
    _after_change(ae, participant, now)
    db.session.flush()
    record_audit(
        actor,
        "adverse_event.created",
        "adverse_event",
        ae.id,
        participant_id=participant.id,
        after=snapshot(ae, AUDITED_FIELDS),
    )
    return ae


def amend(
    actor: Actor,
    participant: Participant,
    ae: AdverseEvent,
    changes: dict[str, Any],
    reason: str,
) -> AdverseEvent:
    """Change an adverse event; the old values stay in the audit trail with the reason."""
    now = utcnow()
    if "seriousness" in changes:
        changes["seriousness"] = sorted(set(changes["seriousness"] or []))
    merged = {name: getattr(ae, name) for name in AUDITED_FIELDS} | changes
    _validate(participant, {k: merged[k] for k in changes} | _pair(merged), now)
    changed = {k: v for k, v in changes.items() if getattr(ae, k) != v}
    if not changed:
        return ae
    before = snapshot(ae, AUDITED_FIELDS)
    for name, value in changed.items():
        setattr(ae, name, value)
    ae.updated_at = now
    ae.version += 1
    _after_change(ae, participant, now)
    record_audit(
        actor,
        "adverse_event.amended",
        "adverse_event",
        ae.id,
        participant_id=participant.id,
        before=before,
        after=snapshot(ae, AUDITED_FIELDS),
        reason=reason,
    )
    return ae


def _pair(merged: dict[str, Any]) -> dict[str, Any]:
    """Awareness and report times are checked together, whichever of them changed."""
    return {"awareness_at": merged["awareness_at"], "reported_at": merged["reported_at"]}


def adverse_events_of(participant_id: int) -> Select[AdverseEvent]:
    return (
        select(AdverseEvent)
        .where(AdverseEvent.participant_id == participant_id)
        .order_by(AdverseEvent.onset_date.desc(), AdverseEvent.id.desc())
    )


def adverse_event_for(participant: Participant, ae_id: int, *, lock: bool = False) -> AdverseEvent:
    """The participant's adverse event (locked for update when asked); 404 otherwise."""
    stmt = select(AdverseEvent).where(
        AdverseEvent.id == ae_id, AdverseEvent.participant_id == participant.id
    )
    if lock:
        stmt = stmt.with_for_update()
    ae = db.session.scalar(stmt)
    if ae is None:
        raise NotFound("No such adverse event.", error="adverse_event_not_found")
    return ae


def overdue_serious_count(now: datetime) -> int:
    """Serious events past their reporting deadline and not yet reported (all sites).

    Only events with an awareness time older than the deadline's hours are candidates,
    a handful; whether each is serious is the model's rule, read in Python.
    """
    hours = study().sae_report_hours
    candidates = db.session.scalars(
        select(AdverseEvent).where(
            AdverseEvent.reported_at.is_(None),
            AdverseEvent.awareness_at.is_not(None),
            AdverseEvent.awareness_at < now - timedelta(hours=hours),
        )
    )
    return sum(1 for ae in candidates if is_overdue(ae, now))
