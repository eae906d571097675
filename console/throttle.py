"""Console sign-in under the API's failed-login limits: the one seam for both.

`sign_in` checks the password with `authenticate_staff` (the API's check) and counts
failures on the per-account limit (`LOGIN_RATE_LIMIT`, keyed by the e-mail) and the
per-client one (`LOGIN_CLIENT_RATE_LIMIT`, keyed by the client address), in the
limiter's storage (`RATELIMIT_STORAGE_URI`, shared by server processes).
"""

from __future__ import annotations

from flask import current_app, request
from limits import parse

from api.errors import DomainError, Unauthorized
from api.extensions import limiter
from api.models import StaffUser
from api.services.sessions import authenticate_staff


def _keys(email: str) -> list[tuple[str, tuple[str, ...]]]:
    config = current_app.config
    account = ("login", email.strip().lower())
    client = ("login-client", request.remote_addr or "unknown")
    return [(config["LOGIN_RATE_LIMIT"], account), (config["LOGIN_CLIENT_RATE_LIMIT"], client)]


def sign_in(email: str, password: str) -> StaffUser:
    """The staff member, or 401 `invalid_credentials` (counted), or 429 `too_many_attempts`
    (not even checked) once this account or client has used up its failures."""
    strategy = limiter.limiter
    keys = _keys(email)
    if any(not strategy.test(parse(rule), *key) for rule, key in keys):
        raise DomainError(
            "Too many attempts; wait before trying again.",
            error="too_many_attempts",
            status_code=429,
        )
    try:
        return authenticate_staff(email, password)
    except Unauthorized:
        for rule, key in keys:
            strategy.hit(parse(rule), *key)
        raise
