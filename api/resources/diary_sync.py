"""The phone's offline queue (`POST /me/diary-entries/sync`): one result per entry."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError

from api.audit import Actor
from api.errors import DomainError
from api.extensions import db
from api.models.participant import ParticipantFacts
from api.schemas.diary import DiaryEntryCreateSchema, DiaryEntrySchema
from api.services import diary as service
from api.study import StudyConfig

log = logging.getLogger(__name__)
_CREATE = DiaryEntryCreateSchema()  # made once: a schema instance holds no request state
_ENTRY = DiaryEntrySchema()


def sync(
    participant: ParticipantFacts, items: list[Any], actor: Actor, now: datetime, study: StudyConfig
) -> list[dict[str, Any]]:
    """One result per queued entry: the whole queue in one transaction where it can be.

    A queue whose entries share no key and no day (the usual one) is stored at once
    (`service.submit_many`, one commit): it gives every entry the result one-at-a-time
    would, and an outage before that commit writes nothing (503: the phone resends it
    all). Any other queue, and any queue whose single transaction fails, is stored one
    entry at a time (`_sync_each`), as before.
    """
    # `participant` is a row (as read at authentication), not an ORM object: each entry's
    # commit leaves it as it is, and no entry reads it again.
    loaded = [_loaded(item) for item in items]
    queue = [values for values in loaded if isinstance(values, dict)]
    if service.keys_and_days_distinct(queue):
        try:
            results = _sync_at_once(participant, items, loaded, queue, actor, now, study)
            db.session.commit()
            return results
        except Exception:
            log.warning(
                "sync: the queue's one transaction failed; one entry at a time", exc_info=True
            )
            _rollback_quietly()
    return _sync_each(participant, items, loaded, actor, now, study)


def _loaded(item: Any) -> dict[str, Any] | ValidationError:
    """A queued entry's values, or why it is rejected (nothing is written for it)."""
    try:
        if not isinstance(item, dict):
            raise ValidationError({"_schema": ["Each entry must be a JSON object."]})
        values: dict[str, Any] = _CREATE.load(item)
        return values
    except ValidationError as exc:
        return exc


def _sync_at_once(
    participant: ParticipantFacts,
    items: list[Any],
    loaded: list[dict[str, Any] | ValidationError],
    queue: list[dict[str, Any]],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
) -> list[dict[str, Any]]:
    """The queue (the entries of `loaded` that passed validation) through
    `service.submit_many`, its results dumped before the commit."""
    outcomes = iter(service.submit_many(participant, queue, actor, now, study))
    results = []
    for index, (item, values) in enumerate(zip(items, loaded, strict=True)):
        result = _sync_result(index, item)
        if isinstance(values, ValidationError):
            result.update(_rejected(values))
        else:
            result.update(_outcome(next(outcomes)))
        results.append(result)
    return results


def _sync_each(
    participant: ParticipantFacts,
    items: list[Any],
    loaded: list[dict[str, Any] | ValidationError],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
) -> list[dict[str, Any]]:
    """Submit each queued entry in its own transaction, with one result per entry.

    A bad or conflicting entry never blocks or rolls back another; a crash midway loses
    nothing the phone cannot replay. Entries are shown as they were written (dumped
    before their commit). An unexpected failure of one entry is that entry's `rejected`
    result (logged), never a 5xx that would hide the entries committed before it and
    make the phone resend them for good. Only a database outage before anything was
    committed propagates (503): nothing was written and the phone resends the batch.
    """
    results: list[dict[str, Any]] = []
    committed = False
    for index, (item, values) in enumerate(zip(items, loaded, strict=True)):
        result = _sync_result(index, item)
        if isinstance(values, ValidationError):  # nothing of it was written
            result.update(_rejected(values))
            results.append(result)
            continue
        try:
            result.update(_outcome(service.submit(participant, values, actor, now, study)))
            db.session.commit()
            committed = True
        except DomainError as exc:
            _rolled_back()
            result.update(_outcome(exc))
        except Exception as exc:
            if isinstance(exc, DBAPIError) and not committed:
                raise
            log.exception("sync: entry %d of participant %d failed", index, participant.id)
            _rollback_quietly()
            result.update(status="rejected", **_failure(exc))
        results.append(result)
    return results


def _rejected(exc: ValidationError) -> dict[str, Any]:
    return {"status": "rejected", "error": "validation_failed", "errors": exc.messages}


def _outcome(outcome: service.Submission | DomainError) -> dict[str, Any]:
    """A submitted entry's result: created or replayed (with the entry), else why not."""
    if isinstance(outcome, DomainError):
        status = "conflict" if outcome.error == "entry_exists_for_date" else "rejected"
        return {"status": status, "error": outcome.error, "errors": outcome.errors, **outcome.extra}
    status = "created" if outcome.created else "replayed"
    return {"status": status, "entry": _ENTRY.dump(outcome.entry)}


def _sync_result(index: int, item: Any) -> dict[str, Any]:
    key = item.get("client_entry_id") if isinstance(item, dict) else None
    return {
        "index": index,
        "client_entry_id": key if isinstance(key, str) else None,
        "entry": None,
        "error": None,
        "errors": None,
        "existing_entry_id": None,
    }


def _failure(exc: Exception) -> dict[str, Any]:
    """A sync entry's unexpected failure as its result: retrying the entry is safe."""
    if isinstance(exc, DBAPIError):
        error, message = "database_unavailable", "The database is unavailable; send it again."
    else:
        error, message = "internal_error", "The server could not store this entry."
    return {"error": error, "errors": {"_schema": [message]}}


def _rolled_back() -> None:
    """Roll back, and forget what the rolled-back INSERTs put in the session.

    The entries are rows, never in the session, but an alert raised for one is an ORM
    object made from its INSERT's answer: a rollback only expires it, and left in the
    identity map it would clash with the next alert given its id (SQLite hands a
    rolled-back rowid out again). Nothing else of this request lives in the session.
    """
    try:
        db.session.rollback()
    finally:
        db.session.expunge_all()


def _rollback_quietly() -> None:
    """Roll back after a failure; a connection that is gone cannot even do that."""
    try:
        _rolled_back()
    except DBAPIError:
        log.warning("sync: rollback failed; the connection is gone")
