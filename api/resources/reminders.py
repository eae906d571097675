"""A participant's reminders, planned to failed, with every message's result (staff)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.access import participant_for
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.models.reminders import Reminder
from api.pagination import SelectPage
from api.schemas.reminders import ReminderQuerySchema, ReminderSchema
from api.services import reminders as service

blp = Blueprint(
    "reminders",
    __name__,
    url_prefix="/api/v1/participants/<int:participant_id>/reminders",
    description="Push reminders of a participant",
)


class ReminderPage(SelectPage):
    @property
    def items(self) -> list[Any]:
        return service.with_deliveries(super().items)


@blp.route("")
class Reminders(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ReminderQuerySchema, location="query")
    @blp.response(200, ReminderSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(ReminderPage)
    def get(self, query: dict[str, Any], participant_id: int) -> Select[Reminder]:
        """List a participant's reminders due between `from` and `to` (local days)."""
        participant = participant_for(current_principal(), participant_id)
        return service.reminders_of(
            participant, query.get("from_"), query.get("to"), query.get("status")
        )
