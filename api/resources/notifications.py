"""What was sent to the participant's phones, and which notifications the app opened."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.auth import PARTICIPANT, Blueprint, current_principal
from api.extensions import db
from api.models.participant import Participant
from api.models.reminders import Reminder
from api.pagination import SelectPage
from api.schemas.reminders import NotificationSchema
from api.services import reminders as service

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/me/notifications",
    description="Reminders sent to the participant",
)


def _me() -> Participant:
    """The calling participant: every route here admits the participant role only."""
    participant = current_principal().participant
    assert participant is not None
    return participant


class NotificationPage(SelectPage):
    """A page of sent reminders, with their texts in the caller's language."""

    @property
    def items(self) -> list[Any]:
        participant = _me()
        return [service.as_notification(r, participant) for r in super().items]


@blp.route("")
class Notifications(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, NotificationSchema(many=True))
    @blp.paginate(NotificationPage)
    def get(self) -> Select[Reminder]:
        """List the reminders sent to me, newest first."""
        return service.sent_to(_me())


@blp.route("/<int:reminder_id>/opened")
class NotificationOpened(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, NotificationSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def post(self, reminder_id: int) -> dict[str, Any]:
        """Record that the app opened this notification (the first opening is kept)."""
        participant = _me()
        reminder = service.mark_opened(participant, reminder_id)
        db.session.commit()
        return service.as_notification(reminder, participant)
