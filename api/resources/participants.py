"""Participants: enrolment, profile and status, activation codes (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.access import (
    WRITERS,
    participant_for,
    participant_for_writing,
    site_for_code,
    visible_participants,
)
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.extensions import db
from api.models import Participant
from api.pagination import SelectPage
from api.schemas.participant import (
    ActivationCodeRequestSchema,
    EnrolledParticipantSchema,
    ParticipantCreateSchema,
    ParticipantQuerySchema,
    ParticipantSchema,
    ParticipantUpdateSchema,
)
from api.services import participants as service

blp = Blueprint(
    "participants", __name__, url_prefix="/api/v1/participants", description="Participants"
)


@blp.route("")
class Participants(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ParticipantQuerySchema, location="query")
    @blp.response(200, ParticipantSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(SelectPage)
    def get(self, query: dict[str, Any]) -> Select[Participant]:
        """List participants at the caller's sites."""
        stmt = visible_participants(current_principal(), query.get("site"))
        if "status" in query:
            stmt = stmt.where(Participant.status == query["status"])
        if "study_code" in query:
            stmt = stmt.where(Participant.study_code == query["study_code"])
        return stmt.order_by(Participant.id)

    @blp.auth(*WRITERS)
    @blp.arguments(ParticipantCreateSchema)
    @blp.response(201, EnrolledParticipantSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any]) -> service.Enrolment:
        """Enrol a participant; the answer carries the one-time activation code."""
        principal = current_principal()
        site = site_for_code(principal, body.pop("site"))
        enrolment = service.enrol(principal.audit_actor(), site=site, **body)
        db.session.commit()
        return enrolment


@blp.route("/<int:participant_id>")
class ParticipantItem(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, ParticipantSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, participant_id: int) -> Participant:
        """Read one participant."""
        return participant_for(current_principal(), participant_id)

    @blp.auth(*WRITERS)
    @blp.arguments(ParticipantUpdateSchema)
    @blp.response(200, ParticipantSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], participant_id: int) -> Participant:
        """Change status (with a reason), time zone, locale or reminder times."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        reason = body.pop("reason", None)
        service.update_participant(principal.audit_actor(), participant, body, reason)
        db.session.commit()
        return participant


@blp.route("/<int:participant_id>/activation-code")
class ActivationCode(MethodView):
    @blp.auth(*WRITERS)
    @blp.arguments(ActivationCodeRequestSchema)
    @blp.response(201, EnrolledParticipantSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any], participant_id: int) -> service.Enrolment:
        """Issue a new activation code; the participant's old sessions are revoked."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        enrolment = service.reissue_activation_code(
            principal.audit_actor(), participant, body.get("reason")
        )
        db.session.commit()
        return enrolment
