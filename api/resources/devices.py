"""The participant's phones: FCM registration tokens for push reminders."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.auth import PARTICIPANT, Blueprint, current_principal
from api.extensions import db
from api.models import Device, Participant
from api.pagination import SelectPage
from api.schemas.devices import DeviceCreateSchema, DeviceSchema
from api.services import devices as service

blp = Blueprint(
    "devices", __name__, url_prefix="/api/v1/me/devices", description="The participant's phones"
)


def _me() -> Participant:
    """The calling participant: `auth(PARTICIPANT)` admits no principal without one."""
    participant = current_principal().participant
    assert participant is not None
    return participant


@blp.route("")
class Devices(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, DeviceSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self) -> Select[Device]:
        """List my phones (dropped ones too, with `active` false)."""
        return service.devices_of(_me())

    @blp.auth(PARTICIPANT)
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="The token was already registered")
    def post(self, body: dict[str, Any]) -> tuple[Device, int]:
        """Register this phone's FCM token (idempotent; moves a token to me)."""
        device, created = service.register_device(_me(), **body)
        db.session.commit()
        return device, 201 if created else 200


@blp.route("/<int:device_id>")
class DeviceItem(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, device_id: int) -> None:
        """Drop a phone: it gets no more reminders (kept, deactivated, for the record)."""
        service.drop_device(_me(), device_id)
        db.session.commit()
