"""Diary entries: the participant's own (`/me/...`) and the site's view (`/participants/...`)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask.views import MethodView
from marshmallow import ValidationError
from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError

from api import settings
from api.access import WRITERS, participant_for, participant_for_writing
from api.audit import Actor
from api.auth import ALL_STAFF, PARTICIPANT, Blueprint, Principal, current_principal
from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.metrics import record_diary_outcomes
from api.models import DiaryEntry, Participant
from api.pagination import SelectPage
from api.schemas.diary import (
    DiaryEntryCreateSchema,
    DiaryEntryQuerySchema,
    DiaryEntrySchema,
    DiaryEntryUpdateSchema,
    DiarySyncResponseSchema,
    DiarySyncSchema,
    StaffDiaryEntryCreateSchema,
    StaffDiaryEntrySchema,
    StaffDiaryEntryUpdateSchema,
)
from api.services import diary as service
from api.services.diary_amend import amend
from api.services.diary_rules import check_participant_may_amend
from api.study import StudyConfig

blp = Blueprint(
    "diary_entries",
    __name__,
    url_prefix="/api/v1",
    description="The symptom diary: submit, replay, sync, correct and amend entries",
)
REPLAY = "A replay of a stored `client_entry_id`: the stored entry, unchanged"


def _me() -> tuple[Principal, Participant]:
    principal = current_principal()
    assert principal.participant is not None
    return principal, principal.participant


def _writable(participant_id: int) -> tuple[Principal, Participant]:
    principal = current_principal()
    return principal, participant_for_writing(principal, participant_id)


def _study() -> StudyConfig:
    return settings.study()


def _answer(
    submission: service.Submission, *, with_versions: bool = False
) -> tuple[DiaryEntry, int]:
    """201 for a new entry, 200 for a replay: the rows as written, kept past the commit.

    The answer shows what this request has just written, so the values in memory are the
    stored ones: the entry (and its versions, where shown) leave the session before the
    commit (`Session.expunge`), which then has nothing of theirs to expire and reload.
    """
    entry = submission.entry
    blp.set_etag(service.etag_data(entry))
    session = db.session()
    for version in entry.versions if with_versions else ():  # loaded now, if at all
        session.expunge(version)
    session.expunge(entry)
    session.commit()
    return entry, 201 if submission.created else 200


@blp.route("/me/diary-entries")
class MyEntries(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.arguments(DiaryEntryQuerySchema, location="query")
    @blp.response(200, DiaryEntrySchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, query: dict[str, Any]) -> Select[DiaryEntry]:
        """List my entries, newest diary day first."""
        principal, _ = _me()
        return service.entries_of(principal.id, query.get("from_"), query.get("to"))

    @blp.auth(PARTICIPANT)
    @blp.etag
    @blp.arguments(DiaryEntryCreateSchema)
    @blp.response(201, DiaryEntrySchema)
    @blp.alt_response(200, schema=DiaryEntrySchema, description=REPLAY, success=True)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any]) -> tuple[DiaryEntry, int]:
        """Submit the entry for a diary day (idempotent by `client_entry_id`)."""
        principal, participant = _me()
        actor = principal.audit_actor()
        return _answer(service.submit(participant, body, actor, utcnow(), _study()))


@blp.route("/me/diary-entries/sync")
class MyEntriesSync(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.arguments(DiarySyncSchema)
    @blp.response(200, DiarySyncResponseSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit up to 100 queued entries; each gets its own result."""
        principal, participant = _me()
        results = _sync(participant, body["entries"], principal.audit_actor(), utcnow())
        record_diary_outcomes(result["status"] for result in results)
        return {"results": results}


@blp.route("/me/diary-entries/<int:entry_id>")
class MyEntry(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.etag
    @blp.response(200, DiaryEntrySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, entry_id: int) -> DiaryEntry:
        """Read one of my entries."""
        principal, _ = _me()
        entry = service.entry_of(principal.id, entry_id)
        blp.set_etag(service.etag_data(entry))
        return entry

    @blp.auth(PARTICIPANT)
    @blp.etag
    @blp.arguments(DiaryEntryUpdateSchema)
    @blp.response(200, DiaryEntrySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], entry_id: int) -> DiaryEntry:
        """Correct my entry while its diary day lasts (`If-Match` required)."""
        principal, participant = _me()
        now = utcnow()
        entry = service.entry_of(principal.id, entry_id)
        check_participant_may_amend(entry, participant, now)
        blp.check_etag(service.etag_data(entry))
        recorded_at = body.pop("recorded_at", None)
        actor = principal.audit_actor()
        amend(entry, participant, body, actor, now, _study(), recorded_at=recorded_at)
        blp.set_etag(service.etag_data(entry))
        db.session.commit()
        return entry


@blp.route("/participants/<int:participant_id>/diary-entries")
class ParticipantEntries(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(DiaryEntryQuerySchema, location="query")
    @blp.response(200, StaffDiaryEntrySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(SelectPage)
    def get(self, query: dict[str, Any], participant_id: int) -> Select[DiaryEntry]:
        """List a participant's entries with every version, newest diary day first."""
        participant = participant_for(current_principal(), participant_id)
        return service.entries_of(
            participant.id, query.get("from_"), query.get("to"), with_versions=True
        )

    @blp.auth(*WRITERS)
    @blp.etag
    @blp.arguments(StaffDiaryEntryCreateSchema)
    @blp.response(201, StaffDiaryEntrySchema)
    @blp.alt_response(200, schema=StaffDiaryEntrySchema, description=REPLAY, success=True)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any], participant_id: int) -> tuple[DiaryEntry, int]:
        """Enter a day on the participant's behalf (any day since enrolment), with a reason."""
        principal, participant = _writable(participant_id)
        reason = body.pop("reason")
        submission = service.submit(
            participant, body, principal.audit_actor(), utcnow(), _study(), reason=reason
        )
        return _answer(submission, with_versions=True)


@blp.route("/participants/<int:participant_id>/diary-entries/<int:entry_id>")
class ParticipantEntry(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.etag
    @blp.response(200, StaffDiaryEntrySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, participant_id: int, entry_id: int) -> DiaryEntry:
        """Read one entry of a participant with every version."""
        participant = participant_for(current_principal(), participant_id)
        entry = service.entry_of(participant.id, entry_id, with_versions=True)
        blp.set_etag(service.etag_data(entry))
        return entry

    @blp.auth(*WRITERS)
    @blp.etag
    @blp.arguments(StaffDiaryEntryUpdateSchema)
    @blp.response(200, StaffDiaryEntrySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], participant_id: int, entry_id: int) -> DiaryEntry:
        """Amend an entry at any time (a data-change request), with a reason."""
        principal, participant = _writable(participant_id)
        entry = service.entry_of(participant.id, entry_id, with_versions=True)
        blp.check_etag(service.etag_data(entry))
        reason = body.pop("reason")
        actor = principal.audit_actor()
        amend(entry, participant, body, actor, utcnow(), _study(), reason=reason)
        blp.set_etag(service.etag_data(entry))
        db.session.commit()
        return entry


# --- sync: the phone's offline queue, one transaction per entry ----------------------------

log = logging.getLogger(__name__)
_CREATE = DiaryEntryCreateSchema()  # made once: a schema instance holds no request state
_ENTRY = DiaryEntrySchema()


def _sync(
    participant: Participant, items: list[Any], actor: Actor, now: datetime
) -> list[dict[str, Any]]:
    """One result per queued entry: the whole queue in one transaction where it can be.

    A queue whose entries share no key and no day (the usual one) is stored at once
    (`service.submit_many`, one commit): it gives every entry the result one-at-a-time
    would, and an outage before that commit writes nothing (503: the phone resends it
    all). Any other queue, and any queue whose single transaction fails, is stored one
    entry at a time (`_sync_each`), as before.
    """
    study = _study()
    # One request, one reading of the participant (as for a single submit): detached,
    # it is not expired by each entry's commit and read again for the next entry.
    if participant in db.session:
        db.session.expunge(participant)
    loaded = [_loaded(item) for item in items]
    queue = [values for values in loaded if isinstance(values, dict)]
    if service.keys_and_days_distinct(queue):
        try:
            results = _sync_at_once(participant, items, loaded, actor, now, study)
            db.session.commit()
            return results
        except Exception:
            log.warning(
                "sync: the queue's one transaction failed; one entry at a time", exc_info=True
            )
            _rollback_quietly()
    return _sync_each(participant, items, actor, now, study)


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
    participant: Participant,
    items: list[Any],
    loaded: list[dict[str, Any] | ValidationError],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
) -> list[dict[str, Any]]:
    """The queue through `service.submit_many`, its results dumped before the commit."""
    queue = [values for values in loaded if isinstance(values, dict)]
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
    participant: Participant, items: list[Any], actor: Actor, now: datetime, study: StudyConfig
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
    for index, item in enumerate(items):
        result = _sync_result(index, item)
        try:
            result.update(_sync_one(participant, item, actor, now, study))
            db.session.commit()
            committed = True
        except ValidationError as exc:
            _rolled_back()
            result.update(_rejected(exc))
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


def _sync_one(
    participant: Participant, item: Any, actor: Actor, now: datetime, study: StudyConfig
) -> dict[str, Any]:
    """One queued entry: validated, submitted and dumped (not yet committed)."""
    values = _loaded(item)
    if isinstance(values, ValidationError):
        raise values
    return _outcome(service.submit(participant, values, actor, now, study))


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
    """Roll back, and forget the entries made from the rolled-back INSERTs.

    They joined the session as stored rows (`service._joined`), so a rollback only
    expires them; left in the identity map, one would clash with the next entry given
    its id (SQLite hands a rolled-back rowid out again). The participant is detached
    and nothing else of this request lives in the session.
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
