"""The coordinators' console: server-rendered pages under `/console/`.

A second face of `api/services/`: every page reads and writes through the same domain
functions, access rules (`api/access.py`) and audit rows as the JSON API. Plain HTML
forms (POST, redirect, GET) work with JavaScript off.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from flask import Flask

from console.blueprint import bp


def _derived_secret(jwt_secret: str) -> str:
    """The cookie-signing key: `SECRET_KEY` when set, else derived from the JWT secret
    (one secret to manage; a different key per use)."""
    return hmac.new(jwt_secret.encode(), b"console-session-cookie", hashlib.sha256).hexdigest()


def init_console(app: Flask) -> None:
    """Register the console Blueprint, its cookie settings, headers and error pages."""
    from console import i18n, security, views  # noqa: F401  (views register their routes)

    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = os.environ.get("SECRET_KEY") or _derived_secret(
            app.config["JWT_SECRET"]
        )
    development = app.config.get("APP_ENV") in {"development", "test"}
    app.config.setdefault("SESSION_COOKIE_NAME", "console_session")
    app.config["SESSION_COOKIE_PATH"] = "/console"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = not development
    # Flask-WTF's token lives in the session; the session's own lifetime rules apply.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.register_blueprint(bp)
    security.init_app(app)
    i18n.init_app(app)
