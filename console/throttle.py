"""Failed console sign-ins, counted against the API's limits.

One small seam: the per-account limit (`LOGIN_RATE_LIMIT`, keyed by the e-mail) and the
per-client one (`LOGIN_CLIENT_RATE_LIMIT`, keyed by the client address), counted in the
limiter's storage (`RATELIMIT_STORAGE_URI`, shared by server processes).
"""

from __future__ import annotations

from flask import current_app, request
from limits import parse

from api.extensions import limiter


def _keys(email: str) -> list[tuple[str, tuple[str, ...]]]:
    config = current_app.config
    account = ("login", email.strip().lower())
    client = ("login-client", request.remote_addr or "unknown")
    return [(config["LOGIN_RATE_LIMIT"], account), (config["LOGIN_CLIENT_RATE_LIMIT"], client)]


def login_blocked(email: str) -> bool:
    """True when this account or this client has used up its failed attempts."""
    strategy = limiter.limiter
    return any(not strategy.test(parse(rule), *key) for rule, key in _keys(email))


def count_failure(email: str) -> None:
    strategy = limiter.limiter
    for rule, key in _keys(email):
        strategy.hit(parse(rule), *key)
