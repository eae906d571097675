"""Staff accounts: the admins' list, creation, disabling, password resets, roles and sites."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.auth import Blueprint, current_principal
from api.extensions import db
from api.models.staff import StaffUser
from api.pagination import SelectPage
from api.schemas.staff import StaffCreateSchema, StaffQuerySchema, StaffSchema, StaffUpdateSchema
from api.services import staff as service

blp = Blueprint("staff", __name__, url_prefix="/api/v1/staff", description="Staff accounts")
ADMIN = "admin"


@blp.route("")
class StaffMembers(MethodView):
    @blp.auth(ADMIN)
    @blp.arguments(StaffQuerySchema, location="query")
    @blp.response(200, StaffSchema(many=True))
    @blp.paginate(SelectPage)
    def get(self, query: dict[str, Any]) -> Select[Any]:
        """List staff accounts (optionally by role or active state)."""
        return service.staff_query(query.get("role"), query.get("is_active"))

    @blp.auth(ADMIN)
    @blp.arguments(StaffCreateSchema)
    @blp.response(201, StaffSchema)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any]) -> StaffUser:
        """Create a staff account; its first password must be changed at first sign-in."""
        staff = service.add_staff(
            body["email"],
            body["role"],
            body.get("sites", []),
            body["password"],
            actor=current_principal().audit_actor(),
            must_change_password=True,
        )
        db.session.commit()
        return staff


@blp.route("/<int:staff_id>")
class StaffMember(MethodView):
    @blp.auth(ADMIN)
    @blp.response(200, StaffSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, staff_id: int) -> StaffUser:
        """Read one staff account."""
        return service.get_staff(staff_id)

    @blp.auth(ADMIN)
    @blp.arguments(StaffUpdateSchema)
    @blp.response(200, StaffSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def patch(self, body: dict[str, Any], staff_id: int) -> StaffUser:
        """Disable or enable, change role and sites, or reset the password (with a reason)."""
        staff = service.update_staff(
            current_principal().audit_actor(),
            staff_id,
            reason=body["reason"],
            is_active=body.get("is_active"),
            role=body.get("role"),
            site_codes=body.get("sites"),
            password=body.get("password"),
        )
        db.session.commit()
        return staff
