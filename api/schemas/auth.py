"""Sign-in bodies and the token pair."""

from marshmallow import fields, validate

from api.schemas.base import BaseSchema


class StaffLoginSchema(BaseSchema):
    email = fields.String(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )


class ActivateSchema(BaseSchema):
    activation_code = fields.String(required=True, validate=validate.Length(min=8, max=64))


class RefreshSchema(BaseSchema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=10, max=200))


class TokenPairSchema(BaseSchema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds"})
