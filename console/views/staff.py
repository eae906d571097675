"""Staff (admins): the accounts, and their lifecycle through `api/services/staff.py`.

Add, disable, enable, reset a password, change role and sites: the same service
functions as the admin API and the CLI, so the same rules hold (the last active admin
is kept, a coordinator needs a site, disabling ends every session at once) and the same
audit rows are written, each with the reason the admin gives here.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from api.auth import STAFF_ROLES
from api.errors import DomainError
from api.extensions import db
from api.models import Site
from api.services import staff as staff_service
from console.blueprint import bp
from console.i18n import error_text, translate
from console.security import admins_only, current_principal


def _sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.code)))


def _page(
    errors: dict[str, Any] | None = None, values: dict[str, Any] | None = None, status: int = 200
):  # type: ignore[no-untyped-def]
    accounts = list(db.session.scalars(staff_service.staff_query()))
    page = render_template(
        "staff.html",
        accounts=accounts,
        roles=STAFF_ROLES,
        sites=_sites(),
        errors=errors or {},
        values=values or {"role": "coordinator", "sites": []},
    )
    return page, status


@bp.get("/staff")
@admins_only
def staff():  # type: ignore[no-untyped-def]
    """Every staff account with its role, sites and state, and the forms to change them."""
    return _page()


def _sentences(exc: DomainError) -> dict[str, list[str]]:
    sentence = error_text(exc.error, exc.message)
    if exc.errors:
        return {
            name: [f"{sentence} ({'; '.join(map(str, msgs))})"] for name, msgs in exc.errors.items()
        }
    return {"_schema": [sentence]}


def _done(message_key: str, **values: Any):  # type: ignore[no-untyped-def]
    db.session.commit()
    flash(translate(message_key, **values), "success")
    return redirect(url_for("console.staff"), 303)


def _refused(exc: DomainError):  # type: ignore[no-untyped-def]
    db.session.rollback()
    for messages in _sentences(exc).values():
        for message in messages:
            flash(message, "error")
    return redirect(url_for("console.staff"), 303)


@bp.post("/staff/new")
@admins_only
def staff_add():  # type: ignore[no-untyped-def]
    form = request.form
    values = {
        "email": form.get("email", "").strip(),
        "role": form.get("role", ""),
        "sites": form.getlist("sites"),
    }
    try:
        account = staff_service.add_staff(
            values["email"],
            values["role"],
            values["sites"] if values["role"] == "coordinator" else [],
            form.get("password", ""),
            actor=current_principal().audit_actor(),
            must_change_password=True,
        )
    except DomainError as exc:
        db.session.rollback()
        return _page(_sentences(exc), values, 422 if exc.status_code == 422 else exc.status_code)
    return _done("staff.added", email=account.email)


def _reason() -> str:
    return request.form.get("reason", "").strip()


@bp.post("/staff/<int:staff_id>/active")
@admins_only
def staff_active(staff_id: int):  # type: ignore[no-untyped-def]
    active = request.form.get("active") == "1"
    try:
        account = staff_service.set_active(
            current_principal().audit_actor(), staff_id, active, _reason()
        )
    except DomainError as exc:
        return _refused(exc)
    return _done("staff.enabled" if active else "staff.disabled", email=account.email)


@bp.post("/staff/<int:staff_id>/role")
@admins_only
def staff_role(staff_id: int):  # type: ignore[no-untyped-def]
    role = request.form.get("role", "")
    sites = request.form.getlist("sites") if role == "coordinator" else []
    try:
        account = staff_service.set_role(
            current_principal().audit_actor(), staff_id, role, sites, _reason()
        )
    except DomainError as exc:
        return _refused(exc)
    return _done("staff.role_changed", email=account.email)


@bp.post("/staff/<int:staff_id>/password")
@admins_only
def staff_password(staff_id: int):  # type: ignore[no-untyped-def]
    try:
        account = staff_service.reset_password(
            current_principal().audit_actor(), staff_id, request.form.get("password", ""), _reason()
        )
    except DomainError as exc:
        return _refused(exc)
    return _done("staff.password_reset", email=account.email)
