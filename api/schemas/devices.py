"""Devices: a participant's FCM registration tokens."""

from marshmallow import fields, validate

from api.models.devices import PLATFORMS
from api.schemas.base import BaseSchema, locale_field


class DeviceSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    token = fields.String(dump_only=True)
    platform = fields.String(dump_only=True)
    app_version = fields.String(dump_only=True, allow_none=True)
    locale = fields.String(dump_only=True, allow_none=True)
    active = fields.Boolean(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    updated_at = fields.AwareDateTime(dump_only=True)


class DeviceCreateSchema(BaseSchema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    platform = fields.String(required=True, validate=validate.OneOf(PLATFORMS))
    app_version = fields.String(validate=validate.Length(min=1, max=40))
    locale = locale_field()
