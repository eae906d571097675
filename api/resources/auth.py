"""Sign-in, token refresh and sign-out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from flask import Flask, Response, current_app, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_limiter import Limiter

from api.auth import Blueprint
from api.extensions import db
from api.schemas.auth import ActivateSchema, RefreshSchema, StaffLoginSchema, TokenPairSchema
from api.services import login_throttle, sessions
from api.services.sessions import TokenPair

blp = Blueprint("auth", __name__, url_prefix="/api/v1/auth", description="Sign-in and tokens")


def _failed(response: Response) -> bool:
    return response.status_code in (401, 422)


def limit_activation(app: Flask, limiter: Limiter) -> None:
    """Activation codes are random: guessing one is limited per client address alone.

    The limit is bound here, once the view is registered, because the limiter is the
    app's own (made in `create_app`), not a module global a decorator could name.
    """
    endpoint = f"{blp.name}.{ParticipantActivate.__name__}"
    per_client = limiter.limit(
        lambda: current_app.config["LOGIN_CLIENT_RATE_LIMIT"], deduct_when=_failed
    )
    # A MethodView's view is synchronous: Flask's registry also admits async ones.
    view = cast(Callable[..., ResponseReturnValue], app.view_functions[endpoint])
    app.view_functions[endpoint] = per_client(view)


@blp.route("/staff/login")
class StaffLogin(MethodView):
    @blp.public
    @blp.arguments(StaffLoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body: dict[str, Any]) -> TokenPair:
        """Sign in a staff member with e-mail and password (failures are throttled)."""
        pair = login_throttle.guarded(
            body["email"],
            request.remote_addr,
            lambda: sessions.login_staff(body["email"], body["password"]),
        )
        db.session.commit()
        return pair


@blp.route("/participants/activate")
class ParticipantActivate(MethodView):
    @blp.public
    @blp.arguments(ActivateSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(429, response="TOO_MANY_REQUESTS")
    def post(self, body: dict[str, Any]) -> TokenPair:
        """Exchange a one-time activation code for the phone's token pair."""
        pair = sessions.activate_participant(body["activation_code"])
        db.session.commit()
        return pair


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.public
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def post(self, body: dict[str, Any]) -> TokenPair:
        """Rotate a refresh token; reusing an old one revokes its family."""
        try:
            pair = sessions.refresh_session(body["refresh_token"])
        except sessions.RefreshReused:
            db.session.commit()  # the family's revocation stands
            raise
        db.session.commit()
        return pair


@blp.route("/logout")
class Logout(MethodView):
    @blp.public
    @blp.arguments(RefreshSchema)
    @blp.response(204)
    def post(self, body: dict[str, Any]) -> None:
        """Revoke the session this refresh token belongs to."""
        sessions.logout(body["refresh_token"])
        db.session.commit()
