"""Amending a diary entry: a new version, its audit row, and any alert it now calls for."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from sqlalchemy.exc import IntegrityError

from api.audit import Actor, record_audit, snapshot
from api.errors import Conflict, DomainError
from api.extensions import db
from api.models import DiaryEntry, Participant
from api.services.alerts import symptom_alert_for_entry
from api.services.diary import AUDITED_FIELDS, find, new_version
from api.services.diary_rules import check_diary_day
from api.study import StudyConfig


def amend(
    entry: DiaryEntry,
    participant: Participant,
    changes: dict[str, Any],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
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
        check_diary_day(participant, changed["diary_date"], now, study, backfill=False)
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
            db.session.add(new_version(entry, actor, now, reason, recorded_at))
    except IntegrityError as exc:
        _raise_amend_conflict(entry, participant, changed, exc)


def _raise_amend_conflict(
    entry: DiaryEntry, participant: Participant, changed: dict[str, Any], exc: IntegrityError
) -> NoReturn:
    """Why the amendment's savepoint failed: the new day is taken, or the entry moved on."""
    if "diary_date" in changed:
        existing = find(participant.id, diary_date=changed["diary_date"])
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
