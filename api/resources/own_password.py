"""A staff member's own password: the one route a must-change-password token may use."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_limiter.util import get_remote_address

from api.auth import ALL_STAFF, Blueprint, current_principal
from api.errors import DomainError
from api.extensions import db, limiter
from api.schemas.auth import TokenPairSchema
from api.schemas.staff import OwnPasswordSchema
from api.services import sessions
from api.services import staff as service

blp = Blueprint(
    "own_password", __name__, url_prefix="/api/v1/auth/staff", description="Sign-in and tokens"
)


def _caller_key() -> str:
    """Wrong current passwords count per account (a stolen token must not guess on)."""
    try:
        return f"password:{current_principal().id}"
    except DomainError:
        return f"password:{get_remote_address()}"


def _wrong_password(response) -> bool:  # type: ignore[no-untyped-def]
    return response.status_code == 401


_per_account = limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    key_func=_caller_key,
    deduct_when=_wrong_password,
)


@blp.route("/password")
class OwnPassword(MethodView):
    decorators = [_per_account]

    @blp.auth(*ALL_STAFF, during_password_change=True)
    @blp.arguments(OwnPasswordSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body: dict):
        """Change your own password; your other sessions end, this answer is a new pair."""
        staff = service.change_own_password(
            current_principal().id, body["current_password"], body["new_password"]
        )
        pair = sessions.start_staff_session(staff)
        db.session.commit()
        return pair
