"""The participant's phones: FCM registration tokens for push reminders."""

from __future__ import annotations

from flask.views import MethodView

from api.auth import PARTICIPANT, Blueprint, current_principal
from api.extensions import db
from api.pagination import SelectPage
from api.schemas.devices import DeviceCreateSchema, DeviceSchema
from api.services import devices as service

blp = Blueprint(
    "devices", __name__, url_prefix="/api/v1/me/devices", description="The participant's phones"
)


@blp.route("")
class Devices(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(200, DeviceSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self):
        """List my phones (dropped ones too, with `active` false)."""
        return service.devices_of(current_principal().participant)

    @blp.auth(PARTICIPANT)
    @blp.arguments(DeviceCreateSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="The token was already registered")
    def post(self, body: dict):
        """Register this phone's FCM token (idempotent; moves a token to me)."""
        device, created = service.register_device(current_principal().participant, **body)
        db.session.commit()
        return device, 201 if created else 200


@blp.route("/<int:device_id>")
class DeviceItem(MethodView):
    @blp.auth(PARTICIPANT)
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, device_id: int):
        """Drop a phone: it gets no more reminders (kept, deactivated, for the record)."""
        service.drop_device(current_principal().participant, device_id)
        db.session.commit()
