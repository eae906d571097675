"""Console sessions, CSRF, security headers and error pages.

The session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure outside development)
holding the staff id, the account's `auth_epoch` and two instants read from the app's
clock: when the session began (absolute lifetime) and when it was last used (idle
timeout). Every request re-reads the staff row, so a disabled account, or one whose
sessions were revoked (epoch bumped), is signed out at its next request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from api.auth import Principal, principal_for_staff
from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.models import StaffUser
from console.blueprint import bp

# Endpoints open without a session.
PUBLIC_ENDPOINTS = {"console.login", "console.login_submit", "console.static", "console.set_locale"}
# What an account whose password an admin reset may reach until it sets its own.
PASSWORD_CHANGE_ENDPOINTS = PUBLIC_ENDPOINTS | {
    "console.password",
    "console.password_submit",
    "console.logout",
}
WRITER_ROLES = ("coordinator", "admin")

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def idle_limit() -> timedelta:
    return timedelta(minutes=current_app.config["CONSOLE_IDLE_MINUTES"])


def absolute_limit() -> timedelta:
    return timedelta(hours=current_app.config["CONSOLE_ABSOLUTE_HOURS"])


def start_session(staff: StaffUser) -> None:
    """Begin a console session for `staff` (a fresh cookie: no fixation of an old one)."""
    locale = session.get("locale")
    session.clear()
    now = utcnow().timestamp()
    session["staff_id"] = staff.id
    session["epoch"] = staff.auth_epoch
    session["started"] = now
    session["seen"] = now
    if locale:
        session["locale"] = locale


def end_session() -> None:
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale


def _session_staff() -> StaffUser | None:
    """The signed-in staff member, or None (the session then ended and says why)."""
    staff_id = session.get("staff_id")
    if staff_id is None:
        return None
    now = utcnow()
    started = _instant(session.get("started"))
    seen = _instant(session.get("seen"))
    if started is None or seen is None or now - started >= absolute_limit():
        return _expire("session.ended_absolute")
    if now - seen >= idle_limit():
        return _expire("session.ended_idle")
    staff = db.session.get(StaffUser, staff_id) if isinstance(staff_id, int) else None
    if staff is None or not staff.is_active or staff.auth_epoch != session.get("epoch"):
        return _expire("session.ended_revoked")
    session["seen"] = now.timestamp()
    return staff


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, UTC)


def _expire(reason: str) -> None:
    end_session()
    session["ended"] = reason
    return None


def current_staff() -> StaffUser:
    staff = g.get("console_staff")
    if staff is None:  # only reachable from a public endpoint
        abort(401)
    return staff


def current_principal() -> Principal:
    return g.principal


def may_write() -> bool:
    staff = g.get("console_staff")
    return staff is not None and staff.role in WRITER_ROLES


def writers_only(func: Callable[..., Any]) -> Callable[..., Any]:
    """Monitors (read-only) get 403 on every write, whatever the form says."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not may_write():
            abort(403)
        return func(*args, **kwargs)

    return wrapper


@functools.cache
def action_roles() -> dict[str, tuple[str, ...]]:
    """Who may do each console action: read from the API view that does the same, so
    the console never keeps a second copy of the role table."""
    from api.resources import (
        adverse_events,
        alerts,
        compliance,
        diary_entries,
        participants,
        schedule,
    )

    views = {
        "enrol": participants.Participants.post,
        "participant": participants.ParticipantItem.patch,
        "activation": participants.ActivationCode.post,
        "diary_entry": diary_entries.ParticipantEntries.post,
        "amend": diary_entries.ParticipantEntry.patch,
        "schedule": schedule.ScheduleEventItem.patch,
        "excuse": compliance.ExcusedDays.post,
        "adverse_event": adverse_events.AdverseEvents.post,
        "adverse_event_edit": adverse_events.AdverseEventItem.patch,
        "acknowledge": alerts.AlertAcknowledge.post,
    }
    return {name: tuple(view._allowed_roles) for name, view in views.items()}  # type: ignore[attr-defined]


def can(action: str) -> bool:
    """May the signed-in person do `action` (a key of `action_roles`)?"""
    staff = g.get("console_staff")
    return staff is not None and staff.role in action_roles()[action]


def requires(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """403 for a role the API refuses the same write (a forged monitor POST included)."""

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not can(action):
                abort(403)
            return func(*args, **kwargs)

        return wrapper

    return decorator


def admins_only(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_staff().role != "admin":
            abort(403)
        return func(*args, **kwargs)

    return wrapper


def safe_next(target: str | None) -> str:
    """A redirect target inside the console only (no open redirect)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/console"):
            return target
    return url_for("console.today")


@bp.before_request
def _authenticate() -> Response | None:
    g.console_staff = staff = _session_staff()
    if staff is not None:
        g.principal = principal_for_staff(staff)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from exc
    if (
        staff is not None
        and staff.must_change_password
        and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS
    ):
        return redirect(url_for("console.password"))
    if staff is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method in ("GET", "HEAD"):
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("console.login"))
    return None


# The main navigation: (endpoint, label key, role required). A page shows up once its
# endpoint exists, so each page module only has to register its route.
NAV_ITEMS = [
    ("console.today", "nav.today", None),
    ("console.participants", "nav.participants", None),
    ("console.alerts", "nav.alerts", None),
    ("console.compliance", "nav.compliance", None),
    ("console.staff", "nav.staff", "admin"),
]


def nav_items() -> list[tuple[str, str]]:
    staff = g.get("console_staff")
    return [
        (endpoint, key)
        for endpoint, key, role in NAV_ITEMS
        if endpoint in current_app.view_functions and (role is None or staff.role == role)
    ]


def console_zone() -> str:
    """The zone the page's times are shown in: the caller's (first) site's."""
    zone = g.get("console_zone_name")
    if zone is None:
        from sqlalchemy import select

        from api.models import Site

        stmt = select(Site.timezone).order_by(Site.code).limit(1)
        principal = g.get("principal")
        if principal is not None and principal.site_ids is not None:
            stmt = stmt.where(Site.id.in_(principal.site_ids))
        zone = db.session.scalar(stmt) or "Asia/Shanghai"
        g.console_zone_name = zone
    return zone


def alert_link(alert: Any) -> str:
    """Where an alert is dealt with: the alert's page when there is one."""
    if "console.alert" in current_app.view_functions:
        return url_for("console.alert", alert_id=alert.id)
    return url_for("console.participant", participant_id=alert.participant_id) + "#alerts"


@bp.app_context_processor
def _template_globals() -> dict[str, Any]:
    if not _is_console_request():
        return {}
    return {
        "console_zone": console_zone() if g.get("console_staff") else "Asia/Shanghai",
        "alert_link": alert_link,
        "has_page": lambda endpoint: endpoint in current_app.view_functions,
        "nav_items": nav_items,
        "csrf_token": generate_csrf,
        "console_staff": g.get("console_staff"),
        "may_write": may_write(),
        "can": can,
    }


def _is_console_request() -> bool:
    return request.path == "/console" or request.path.startswith("/console/")


def _add_headers(response: Response) -> Response:
    if _is_console_request():
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
    return response


def render_error(status: int, message_key: str | None = None, message: str | None = None):  # type: ignore[no-untyped-def]
    return (
        render_template("error.html", status=status, message_key=message_key, message=message),
        status,
    )


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):  # type: ignore[no-untyped-def]
    return render_error(400, "error.csrf")


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError):  # type: ignore[no-untyped-def]
    db.session.rollback()
    return render_error(exc.status_code, f"error.{exc.error}", exc.message)


def _http_error(exc: HTTPException):  # type: ignore[no-untyped-def]
    """Console URLs answer HTML error pages; the API keeps its JSON shape."""
    if not _is_console_request():
        from api.errors import handle_http_exception

        return handle_http_exception(exc)
    if g.get("console_staff") is None and "staff_id" not in session and exc.code == 404:
        return redirect(url_for("console.login"))
    return render_error(exc.code or 500, f"error.http_{exc.code}")


def init_app(app: Flask) -> None:
    app.config.setdefault("CONSOLE_IDLE_MINUTES", 30)
    app.config.setdefault("CONSOLE_ABSOLUTE_HOURS", 12)
    app.after_request(_add_headers)
    for code in (400, 401, 403, 404, 405, 413, 429):
        app.register_error_handler(code, _http_error)
