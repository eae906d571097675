"""Staff accounts as admins see them, and the bodies that change them."""

from typing import Any

from marshmallow import fields, validate

from api.models.staff import STAFF_ROLES
from api.schemas.base import REASON, BaseSchema

# The length rules of api/services/staff.py, in the OpenAPI document too.
PASSWORD = validate.Length(min=12, max=1024)


def _site_codes() -> fields.List[str]:
    return fields.List(
        fields.String(validate=validate.Length(min=2, max=10)), validate=validate.Length(max=20)
    )


def _password(**kwargs: Any) -> fields.String:
    return fields.String(load_only=True, validate=PASSWORD, **kwargs)


class StaffSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    email = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    sites = fields.List(fields.String(), attribute="site_codes", dump_only=True)
    is_active = fields.Boolean(dump_only=True)
    must_change_password = fields.Boolean(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)
    last_sign_in_at = fields.AwareDateTime(dump_only=True, allow_none=True)


class StaffQuerySchema(BaseSchema):
    role = fields.String(validate=validate.OneOf(STAFF_ROLES))
    is_active = fields.Boolean()


class StaffCreateSchema(BaseSchema):
    """A new account; its first password must be changed at the first sign-in."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(required=True, validate=validate.OneOf(STAFF_ROLES))
    sites = _site_codes()
    password = _password(required=True)


class StaffUpdateSchema(BaseSchema):
    """Any of: disable/enable, role and sites, a password reset; always with a reason.

    What is already so changes nothing and writes no audit row (a replay is harmless).
    """

    is_active = fields.Boolean()
    role = fields.String(validate=validate.OneOf(STAFF_ROLES))
    sites = _site_codes()
    password = _password(
        metadata={"description": "A reset: sessions end, a change is required at sign-in"}
    )
    reason = fields.String(required=True, validate=REASON)


class OwnPasswordSchema(BaseSchema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=1024)
    )
    new_password = _password(required=True)
