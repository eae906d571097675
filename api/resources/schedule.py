"""The protocol schedule: staff see and change a participant's; participants see theirs."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.access import participant_for, participant_for_writing
from api.auth import ALL_STAFF, PARTICIPANT, Blueprint, current_principal
from api.clock import utcnow
from api.extensions import db
from api.models import ScheduleEvent
from api.pagination import SelectPage
from api.schemas.schedule import ScheduleEventSchema, ScheduleEventUpdateSchema
from api.services import schedule as service
from api.services.participants import local_today

blp = Blueprint("schedule", __name__, url_prefix="/api/v1", description="Schedule")


@blp.route("/participants/<int:participant_id>/schedule")
class Schedule(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, ScheduleEventSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(SelectPage, page_size=50, max_page_size=100)
    def get(self, participant_id: int) -> Select[ScheduleEvent]:
        """List a participant's infusions, lab visits and follow-up contacts."""
        participant = participant_for(current_principal(), participant_id)
        return service.events_query(participant.id)


@blp.route("/participants/<int:participant_id>/schedule/<int:event_id>")
class ScheduleEventItem(MethodView):
    @blp.auth("coordinator")
    @blp.arguments(ScheduleEventUpdateSchema)
    @blp.response(200, ScheduleEventSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], participant_id: int, event_id: int) -> ScheduleEvent:
        """Reschedule an event, record the day it took place, or mark it missed."""
        principal = current_principal()
        participant = participant_for_writing(principal, participant_id)
        event = service.event_for(participant.id, event_id, lock=True)
        now = utcnow()
        reason = body.pop("reason", None)
        service.update_event(
            principal.audit_actor(),
            participant,
            event,
            body,
            reason,
            local_today(participant, now),
            now,
        )
        db.session.commit()
        return event


@blp.route("/me/schedule")
class MySchedule(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, ScheduleEventSchema(many=True))
    @blp.paginate(SelectPage, page_size=50, max_page_size=100)
    def get(self) -> Select[ScheduleEvent]:
        """List my upcoming infusions and visits."""
        participant = current_principal().participant
        assert participant is not None
        return service.upcoming_query(participant.id, local_today(participant, utcnow()))
