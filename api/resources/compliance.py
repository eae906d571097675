"""Diary compliance: the report per participant and site, a participant's calendar, excuses."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from sqlalchemy import Select

from api.access import participant_for, participant_for_writing, site_ids_in_scope
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.clock import utcnow
from api.extensions import db
from api.models import ExcusedDay
from api.pagination import SelectPage
from api.schemas.base import DateRangeQuerySchema
from api.schemas.compliance import (
    CalendarSchema,
    ComplianceQuerySchema,
    ComplianceReportSchema,
    ExcusedDayCreateSchema,
    ExcusedDaySchema,
)
from api.services import compliance as service
from api.services import excused_days

blp = Blueprint("compliance", __name__, url_prefix="/api/v1", description="Diary compliance")


@blp.route("/compliance")
class Compliance(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.response(200, ComplianceReportSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Report diary compliance per participant and per site, computed in the database."""
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        return service.compliance_report(
            site_ids,
            utcnow(),
            from_=query.get("from_"),
            to=query.get("to"),
            study=current_app.extensions["study"],
        )


@blp.route("/participants/<int:participant_id>/compliance")
class ParticipantCalendar(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(DateRangeQuerySchema, location="query")
    @blp.response(200, CalendarSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any], participant_id: int) -> dict[str, Any]:
        """Show one participant's diary days: on time, late, missing, excused, not yet due."""
        participant = participant_for(current_principal(), participant_id)
        return service.calendar(
            participant,
            utcnow(),
            from_=query.get("from_"),
            to=query.get("to"),
            study=current_app.extensions["study"],
        )


@blp.route("/participants/<int:participant_id>/excused-days")
class ExcusedDays(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, ExcusedDaySchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(SelectPage, page_size=100, max_page_size=1000)
    def get(self, participant_id: int) -> Select[ExcusedDay]:
        """List a participant's excused days."""
        participant = participant_for(current_principal(), participant_id)
        return excused_days.excused_days_of(participant.id)

    @blp.auth("coordinator")
    @blp.arguments(ExcusedDayCreateSchema)
    @blp.response(201, ExcusedDaySchema(many=True))
    @blp.alt_response(
        200, schema=ExcusedDaySchema(many=True), description="Every day was already excused"
    )
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any], participant_id: int) -> tuple[list[ExcusedDay], int]:
        """Excuse a range of days (a hospital stay): 201 if any day is new, else 200."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        days, added = excused_days.excuse_days(
            principal.audit_actor(), participant, body["from_"], body["to"], body["reason"]
        )
        db.session.commit()
        return days, (201 if added else 200)
