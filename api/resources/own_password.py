"""A staff member's own password: the one route a must-change-password token may use."""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView

from api.auth import ALL_STAFF, Blueprint, current_principal
from api.errors import Unauthorized
from api.extensions import db
from api.schemas.auth import TokenPairSchema
from api.schemas.staff import OwnPasswordSchema
from api.services import login_throttle, sessions
from api.services import staff as service
from api.services.sessions import TokenPair

blp = Blueprint(
    "own_password", __name__, url_prefix="/api/v1/auth/staff", description="Sign-in and tokens"
)


@blp.route("/password")
class OwnPassword(MethodView):
    @blp.auth(*ALL_STAFF, during_password_change=True)
    @blp.arguments(OwnPasswordSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body: dict[str, Any]) -> TokenPair:
        """Change your own password; your other sessions end, this answer is a new pair."""
        staff = current_principal().staff
        assert staff is not None
        # A wrong current password is a guess like a wrong sign-in: the same counters.
        login_throttle.check(staff.email, request.remote_addr)
        try:
            staff = service.change_own_password(
                staff.id, body["current_password"], body["new_password"]
            )
        except Unauthorized:
            db.session.rollback()
            login_throttle.record_failure(staff.email, request.remote_addr)
            raise
        pair = sessions.start_staff_session(staff)
        db.session.commit()
        return pair
