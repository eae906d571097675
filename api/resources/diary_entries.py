"""Diary entries: the participant's own (`/me/...`) and the site's view (`/participants/...`)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Row, Select

from api import settings
from api.access import WRITERS, participant_for, participant_for_writing
from api.auth import ALL_STAFF, PARTICIPANT, Blueprint, Principal, current_principal
from api.clock import utcnow
from api.extensions import db
from api.metrics import record_diary_outcomes
from api.models import DiaryEntry, Participant
from api.models.diary import StoredEntry
from api.pagination import SelectPage
from api.resources.diary_sync import sync
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


def _my_row() -> tuple[Principal, Row[Any]]:
    """The caller and their row as read at authentication: all a submit or a sync reads."""
    principal = current_principal()
    assert principal.participant_row is not None
    return principal, principal.participant_row


def _writable(participant_id: int) -> tuple[Principal, Participant]:
    principal = current_principal()
    return principal, participant_for_writing(principal, participant_id)


def _study() -> StudyConfig:
    return settings.study()


def _answer(submission: service.Submission) -> tuple[StoredEntry, int]:
    """201 for a new entry, 200 for a replay: the entry's row, as written or stored."""
    entry = submission.entry
    blp.set_etag(service.etag_data(entry))
    db.session.commit()
    return entry, 201 if submission.created else 200


def _answer_with_versions(
    submission: service.Submission, participant_id: int
) -> tuple[DiaryEntry, int]:
    """`_answer` for the staff view: the entry with every version, read in the submit's
    transaction and kept past the commit (`Session.expunge`: nothing to expire and reload)."""
    entry = service.entry_of(participant_id, submission.entry.id, with_versions=True)
    blp.set_etag(service.etag_data(entry))
    session = db.session()
    for version in entry.versions:
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
        principal = current_principal()
        return service.entries_of(principal.id, query.get("from_"), query.get("to"))

    @blp.auth(PARTICIPANT)
    @blp.etag
    @blp.arguments(DiaryEntryCreateSchema)
    @blp.response(201, DiaryEntrySchema)
    @blp.alt_response(200, schema=DiaryEntrySchema, description=REPLAY, success=True)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any]) -> tuple[StoredEntry, int]:
        """Submit the entry for a diary day (idempotent by `client_entry_id`)."""
        principal, participant = _my_row()
        actor = principal.audit_actor()
        return _answer(service.submit(participant, body, actor, utcnow(), _study()))


@blp.route("/me/diary-entries/sync")
class MyEntriesSync(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.arguments(DiarySyncSchema)
    @blp.response(200, DiarySyncResponseSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit up to 100 queued entries; each gets its own result."""
        principal, participant = _my_row()
        results = sync(participant, body["entries"], principal.audit_actor(), utcnow(), _study())
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
        principal = current_principal()
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
        return _answer_with_versions(submission, participant.id)


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
