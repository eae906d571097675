"""Adverse events of a participant, recorded by the site."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.access import participant_for, participant_for_writing
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.extensions import db
from api.models.adverse_events import AdverseEvent
from api.pagination import SelectPage
from api.schemas.adverse_events import (
    AdverseEventCreateSchema,
    AdverseEventSchema,
    AdverseEventUpdateSchema,
    IdempotencyKeyHeaderSchema,
)
from api.services import adverse_events as service

blp = Blueprint(
    "adverse_events",
    __name__,
    url_prefix="/api/v1/participants/<int:participant_id>/adverse-events",
    description="Adverse events",
)
REPLAY = "A resent request (same `Idempotency-Key`, same body): the stored record"
CONFLICTS = (
    "A rule of the record refused it (its own `error` code), or `idempotency_key_reused`: "
    "the `Idempotency-Key` was used with another body"
)


@blp.route("")
class AdverseEvents(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, AdverseEventSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(SelectPage, page_size=50, max_page_size=500)
    def get(self, participant_id: int) -> Select[AdverseEvent]:
        """List a participant's adverse events, latest onset first."""
        participant = participant_for(current_principal(), participant_id)
        return service.adverse_events_of(participant.id)

    @blp.auth("coordinator")
    @blp.arguments(AdverseEventCreateSchema)
    @blp.arguments(IdempotencyKeyHeaderSchema, location="headers")
    @blp.response(201, AdverseEventSchema)
    @blp.alt_response(200, schema=AdverseEventSchema, description=REPLAY, success=True)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT", description=CONFLICTS)
    def post(
        self, body: dict[str, Any], headers: dict[str, Any], participant_id: int
    ) -> tuple[AdverseEvent, int]:
        """Record an adverse event; a serious one raises an urgent alert, starts the 24 h clock."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        key = headers.get("idempotency_key")
        if key is None:
            ae, created = service.record(principal.audit_actor(), participant, body), True
        else:
            ae, created = service.record_once(principal.audit_actor(), participant, body, key)
        db.session.commit()
        return ae, 201 if created else 200


@blp.route("/<int:ae_id>")
class AdverseEventItem(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, AdverseEventSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, participant_id: int, ae_id: int) -> AdverseEvent:
        """Read one adverse event."""
        participant = participant_for(current_principal(), participant_id)
        return service.adverse_event_for(participant, ae_id)

    @blp.auth("coordinator")
    @blp.arguments(AdverseEventUpdateSchema)
    @blp.response(200, AdverseEventSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], participant_id: int, ae_id: int) -> AdverseEvent:
        """Amend an adverse event (reason required; the old values stay in the audit trail)."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        ae = service.adverse_event_for(participant, ae_id, lock=True)
        reason = body.pop("reason")
        service.amend(principal.audit_actor(), participant, ae, body, reason)
        db.session.commit()
        return ae
