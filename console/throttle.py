"""Console sign-in under the API's failed-login limits, counted on the same keys.

`sign_in` runs the API's password check (`sessions.authenticate_staff`) inside
`login_throttle.guarded`, exactly as `POST /api/v1/auth/staff/login` does, so a wrong
password typed into either counts against the same account and client.
"""

from __future__ import annotations

from flask import current_app, request
from limits import parse

from api.errors import TooManyAttempts
from api.extensions import limiter_for
from api.models import StaffUser
from api.services import login_throttle, sessions


def sign_in(email: str, password: str) -> StaffUser:
    """The staff member; 401 `invalid_credentials` (counted) or 429 `too_many_attempts`."""
    return login_throttle.guarded(
        email, request.remote_addr, lambda: sessions.authenticate_staff(email, password)
    )


def check_password_guess(staff_id: int) -> None:
    """Wrong current passwords on the console's password form, per account
    (`LOGIN_RATE_LIMIT`): a borrowed session must not guess the password on."""
    rule = parse(current_app.config["LOGIN_RATE_LIMIT"])
    if not limiter_for().limiter.test(rule, "console-password", str(staff_id)):
        raise TooManyAttempts("Too many attempts; wait before trying again.", retry_after=60)


def count_password_guess(staff_id: int) -> None:
    limiter_for().limiter.hit(
        parse(current_app.config["LOGIN_RATE_LIMIT"]), "console-password", str(staff_id)
    )
