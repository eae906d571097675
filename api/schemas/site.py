"""Sites."""

from marshmallow import fields

from api.schemas.base import BaseSchema


class SiteSchema(BaseSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    city = fields.String(required=True)
    timezone = fields.String(required=True)
