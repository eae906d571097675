"""The symptom diary: submit, replay, amend (SPEC §2).

The database settles idempotency and "one entry per day": an entry is inserted with
ON CONFLICT DO NOTHING and the unique constraints decide; Python only looks up *why* an
insert was kept out. Every state an entry ever had is an immutable `DiaryEntryVersion` row
(version 1 is the original), written in the same transaction as the entry, its audit
row and any symptom alert.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import lazyload

from api.audit import Actor, record_audit, snapshot
from api.errors import Conflict, DomainError, NotFound
from api.extensions import db
from api.models import DiaryEntry, DiaryEntryVersion, Participant
from api.models.diary import SCORE_FIELDS
from api.schemas.diary import DiaryEntryCreateSchema, DiaryEntrySchema, utc_offset_minutes
from api.services.alerts import symptom_alert_for_entry
from api.services.participants import local_today
from api.services.schedule import add_months
from api.study import StudyConfig

VALUE_FIELDS = (*SCORE_FIELDS, "note")
log = logging.getLogger(__name__)

AUDITED_FIELDS = ("diary_date", *VALUE_FIELDS, "recorded_at", "late", "source", "version")


@dataclass(frozen=True)
class Submission:
    """The outcome of a submit: the stored entry and whether this call created it."""

    entry: DiaryEntry
    created: bool


def _study() -> StudyConfig:
    return current_app.extensions["study"]


def day_end(diary_date: date, zone: str) -> datetime:
    """The instant a diary day ends: the next local midnight in `zone`, DST included.

    Where midnight itself is skipped by a DST jump, zoneinfo's fold=0 maps it to the
    instant of the jump, which is when the day ended.
    """
    return datetime.combine(diary_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))


def is_late(diary_date: date, zone: str, recorded_at: datetime, received_at: datetime) -> bool:
    """Late = completed after its day ended. The device's clock is believed only when it
    does not claim a time after the server received the entry (plus the allowed skew)."""
    skew = timedelta(minutes=_study().clock_skew_minutes)
    completed = recorded_at if recorded_at <= received_at + skew else received_at
    return completed >= day_end(diary_date, zone)


class Refused(Conflict):
    """A well-formed entry the diary cannot take now (its day, the participant's status):
    409 with the rule's own `error` code, naming the field like a validation error."""

    def __init__(self, field: str, message: str, *, error: str) -> None:
        super().__init__(message, error=error, errors={field: [message]})


def check_active(participant: Participant) -> None:
    """Withdrawn, completed or deceased participants keep no diary."""
    if not participant.is_active:
        raise Refused(
            "participant",
            f"The participant is {participant.status}; the diary is closed.",
            error="participant_inactive",
        )


def check_diary_day(
    participant: Participant, diary_date: date, now: datetime, *, backfill: bool
) -> None:
    """Refuse days the participant cannot have an entry for, each with its own code."""
    today = local_today(participant, now)
    if diary_date > today:
        raise Refused(
            "diary_date", "The diary day has not begun yet.", error="diary_date_in_future"
        )
    if diary_date < participant.enrolled_on:
        raise Refused(
            "diary_date",
            f"The diary starts on the enrolment day, {participant.enrolled_on.isoformat()}.",
            error="diary_date_before_enrolment",
        )
    study = _study()
    if diary_date > add_months(participant.enrolled_on, study.diary_months):
        raise Refused(
            "diary_date", "The diary period of the study has ended.", error="diary_period_ended"
        )
    oldest = today - timedelta(days=study.backfill_days)
    if backfill and diary_date < oldest:
        raise Refused(
            "diary_date",
            f"Entries can be made for today and the {study.backfill_days} previous days only; "
            "ask your site to record older days.",
            error="backfill_window_closed",
        )


def _new_version(
    entry: DiaryEntry,
    actor: Actor,
    now: datetime,
    reason: str | None,
    recorded_at: datetime | None = None,
) -> DiaryEntryVersion:
    """Snapshot the entry's current values as its newest version.

    `recorded_at` is the device time of an amendment (else the entry's own); `source`
    says who made this version, whoever made the entry.
    """
    actor_type, actor_id = actor
    assert actor_id is not None
    offset = entry.recorded_offset_minutes
    if recorded_at is not None:
        offset = utc_offset_minutes(recorded_at)
    return DiaryEntryVersion(
        entry=entry,
        participant_id=entry.participant_id,
        version=entry.version,
        diary_date=entry.diary_date,
        **{name: getattr(entry, name) for name in VALUE_FIELDS},
        recorded_at=recorded_at or entry.recorded_at,
        recorded_offset_minutes=offset,
        source="staff" if actor_type == "staff" else "participant",
        actor_type=actor_type,
        actor_id=actor_id,
        at=now,
        reason=reason,
    )


def _find(participant_id: int, **by: Any) -> DiaryEntry | None:
    return db.session.scalar(
        select(DiaryEntry)
        .filter_by(participant_id=participant_id, **by)
        .options(lazyload(DiaryEntry.versions))
        .limit(1)
    )


def _insert_unless_taken(row: dict[str, Any]) -> DiaryEntry | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: the new entry, or None when one of the
    unique constraints (participant + day, participant + client key) already holds a row.

    One statement decides, also against a concurrent writer: PostgreSQL makes the second
    insert wait for the first transaction and then skip; SQLite takes the write lock
    first. No savepoint and no exception path are needed.
    """
    stmt = _INSERT_UNLESS_TAKEN[db.session.get_bind().dialect.name]
    return db.session.scalars(stmt, [row]).one_or_none()


# Built once: the row travels as parameters, so each call skips building, coercing and
# cache-keying a statement.
_INSERT_UNLESS_TAKEN = {
    name: insert(DiaryEntry)
    .on_conflict_do_nothing()
    .returning(DiaryEntry)
    .options(lazyload(DiaryEntry.versions))  # a new entry's versions are known: none
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _replay_or_conflict(
    participant_id: int, client_entry_id: uuid.UUID, diary_date: date
) -> Submission:
    """After the database kept an insert out: the stored twin (replay) or a 409."""
    stored = _find(participant_id, client_entry_id=client_entry_id)
    if stored is not None:
        return Submission(stored, created=False)
    existing = _find(participant_id, diary_date=diary_date)
    if existing is None:  # rows are never deleted, so one of the two must exist
        raise RuntimeError("diary entry insert skipped without a conflicting row")
    raise Conflict(
        f"There is already an entry for {diary_date.isoformat()}; amend it instead.",
        error="entry_exists_for_date",
        existing_entry_id=existing.id,
    )


def submit(
    participant: Participant,
    values: dict[str, Any],
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
) -> Submission:
    """Create the entry for a diary day, or return the stored one for a replayed key.

    A replay returns the stored entry even when the resent values differ (the first
    submission is the record; a change is an amendment). A replay is recognised before
    the day rules, so a retry that arrives after the backfill window moved on, or after
    the participant was withdrawn, still gets its stored entry back rather than an error.
    """
    staff = actor[0] == "staff"
    client_entry_id = values.get("client_entry_id") or uuid.uuid4()
    diary_date: date = values["diary_date"]
    try:
        check_active(participant)
        check_diary_day(participant, diary_date, now, backfill=not staff)
    except DomainError:
        stored = _find(participant.id, client_entry_id=client_entry_id)
        if stored is not None:
            return Submission(stored, created=False)
        raise
    recorded_at: datetime = values.get("recorded_at") or now
    entry = _insert_unless_taken(
        {
            "participant_id": participant.id,
            "diary_date": diary_date,
            "client_entry_id": client_entry_id,
            **{name: values[name] for name in SCORE_FIELDS},
            "note": values.get("note"),
            "recorded_at": recorded_at,
            "recorded_offset_minutes": utc_offset_minutes(recorded_at),
            "timezone": participant.timezone,
            "received_at": now,
            "late": is_late(diary_date, participant.timezone, recorded_at, now),
            "source": "staff" if staff else "participant",
            "created_by_staff_id": actor[1] if staff else None,
            "version": 1,
            "updated_at": now,
        }
    )
    if entry is None:
        return _replay_or_conflict(participant.id, client_entry_id, diary_date)
    # Version 1 and the audit row go out with the commit, in one flush.
    db.session.add(_new_version(entry, actor, now, reason))
    record_audit(
        actor,
        "diary_entry.created",
        "diary_entry",
        entry.id,
        participant_id=participant.id,
        after=snapshot(entry, AUDITED_FIELDS),
        reason=reason,
    )
    symptom_alert_for_entry(entry, participant, now)
    return Submission(entry, created=True)


def check_participant_may_amend(entry: DiaryEntry, participant: Participant, now: datetime) -> None:
    """A participant corrects a mis-tap only while the entry's diary day lasts."""
    check_active(participant)
    if now >= day_end(entry.diary_date, entry.timezone):
        raise Conflict(
            "This diary day has ended; ask your site to correct the entry.",
            error="entry_locked",
        )


def amend(
    entry: DiaryEntry,
    participant: Participant,
    changes: dict[str, Any],
    actor: Actor,
    now: datetime,
    *,
    reason: str | None = None,
    recorded_at: datetime | None = None,
) -> DiaryEntry:
    """Apply a correction as a new version; the old values stay in the earlier versions.

    Nothing changed → no new version. A concurrent amendment of the same version loses
    on the (entry_id, version) unique constraint and answers 412, like a stale ETag.
    """
    changed = {k: v for k, v in changes.items() if getattr(entry, k) != v}
    if not changed:
        return entry
    if "diary_date" in changed:
        check_diary_day(participant, changed["diary_date"], now, backfill=False)
    before = snapshot(entry, AUDITED_FIELDS)
    _apply_amendment(entry, participant, changed, actor, now, reason, recorded_at)
    record_audit(
        actor,
        "diary_entry.amended",
        "diary_entry",
        entry.id,
        participant_id=participant.id,
        before=before,
        after=snapshot(entry, AUDITED_FIELDS),
        reason=reason,
    )
    symptom_alert_for_entry(entry, participant, now)
    return entry


def _apply_amendment(
    entry: DiaryEntry,
    participant: Participant,
    changed: dict[str, Any],
    actor: Actor,
    now: datetime,
    reason: str | None,
    recorded_at: datetime | None,
) -> None:
    """Change the entry and add its new version inside a savepoint (which must begin
    before the first change: `begin_nested` flushes what is pending)."""
    try:
        with db.session.begin_nested():
            for name, value in changed.items():
                setattr(entry, name, value)
            entry.version += 1
            entry.updated_at = now
            # The correction's own device time lives on its version; the entry keeps
            # the original completion time its lateness was judged on.
            db.session.add(_new_version(entry, actor, now, reason, recorded_at))
    except IntegrityError as exc:
        if "diary_date" in changed:
            existing = _find(participant.id, diary_date=changed["diary_date"])
            if existing is not None and existing.id != entry.id:
                raise Conflict(
                    f"There is already an entry for {changed['diary_date'].isoformat()}.",
                    error="entry_exists_for_date",
                    existing_entry_id=existing.id,
                ) from exc
        raise DomainError(
            "The entry was changed meanwhile; read it again and retry.",
            error="precondition_failed",
            status_code=412,
        ) from exc


def entry_of(participant_id: int, entry_id: int, *, with_versions: bool = False) -> DiaryEntry:
    """One entry of this participant; another participant's is 404, never 403."""
    options = [] if with_versions else [lazyload(DiaryEntry.versions)]
    entry = db.session.get(DiaryEntry, entry_id, options=options)
    if entry is None or entry.participant_id != participant_id:
        raise NotFound("No such diary entry.", error="entry_not_found")
    return entry


def entries_of(
    participant_id: int,
    from_: date | None = None,
    to: date | None = None,
    *,
    with_versions: bool = False,
) -> Select[tuple[DiaryEntry]]:
    """A participant's entries, newest diary day first, within inclusive `from`/`to`."""
    stmt = select(DiaryEntry).where(DiaryEntry.participant_id == participant_id)
    if not with_versions:
        stmt = stmt.options(lazyload(DiaryEntry.versions))
    if from_ is not None:
        stmt = stmt.where(DiaryEntry.diary_date >= from_)
    if to is not None:
        stmt = stmt.where(DiaryEntry.diary_date <= to)
    return stmt.order_by(DiaryEntry.diary_date.desc())


def etag_data(entry: DiaryEntry) -> dict[str, int]:
    """What an entry's ETag is computed from: the same in every answer that shows it."""
    return {"id": entry.id, "version": entry.version}


def sync(
    participant: Participant, items: list[Any], actor: Actor, now: datetime
) -> list[dict[str, Any]]:
    """Submit a phone's offline queue: one transaction per item, one result per item.

    Each item is validated and committed on its own, so a bad or conflicting item never
    blocks or rolls back another; a crash midway loses nothing the phone cannot replay.
    Entries are shown as they were when written (dumped before their commit).

    The batch is answered item by item whatever an item holds: an unexpected failure of
    one item is that item's `rejected` result (logged), never a 5xx that would hide the
    items committed before it and make the phone resend them for good. Only a database
    outage before anything was committed propagates (503): nothing was written and the
    phone resends the whole batch.
    """
    results: list[dict[str, Any]] = []
    committed = False
    for index, item in enumerate(items):
        result: dict[str, Any] = {
            "index": index,
            "client_entry_id": _raw_key(item),
            "entry": None,
            "error": None,
            "errors": None,
            "existing_entry_id": None,
        }
        try:
            if not isinstance(item, dict):
                raise ValidationError({"_schema": ["Each entry must be a JSON object."]})
            values = DiaryEntryCreateSchema().load(item)
            outcome = submit(participant, values, actor, now)
            result["status"] = "created" if outcome.created else "replayed"
            result["entry"] = DiaryEntrySchema().dump(outcome.entry)
            db.session.commit()
            committed = True
        except ValidationError as exc:
            db.session.rollback()
            result.update(status="rejected", error="validation_failed", errors=exc.messages)
        except DomainError as exc:
            db.session.rollback()
            status = "conflict" if exc.error == "entry_exists_for_date" else "rejected"
            result.update(status=status, error=exc.error, errors=exc.errors, **exc.extra)
        except Exception as exc:
            if isinstance(exc, DBAPIError) and not committed:
                raise
            log.exception("sync: entry %d of participant %d failed", index, participant.id)
            _rollback_quietly()
            result.update(status="rejected", **_failure(exc))
        results.append(result)
    return results


def _failure(exc: Exception) -> dict[str, Any]:
    """A sync item's unexpected failure as its result: retrying the item is safe."""
    if isinstance(exc, DBAPIError):
        error, message = "database_unavailable", "The database is unavailable; send it again."
    else:
        error, message = "internal_error", "The server could not store this entry."
    return {"error": error, "errors": {"_schema": [message]}}


def _rollback_quietly() -> None:
    """Roll back after a failure; a connection that is gone cannot even do that."""
    try:
        db.session.rollback()
    except DBAPIError:
        log.warning("sync: rollback failed; the connection is gone")


def _raw_key(item: Any) -> str | None:
    key = item.get("client_entry_id") if isinstance(item, dict) else None
    return key if isinstance(key, str) else None
