"""Staff accounts: create, list, disable and re-enable, passwords, role and sites.

Called by the admin API, the operators' CLI and the console alike: plain values in,
domain exceptions out; the caller commits. Every change writes an audit row (who, when,
before and after, why) in the same transaction; password hashes never reach the audit
trail or an answer.

Ending a person's sessions means two things at once: their ``auth_epoch`` is bumped, so
every access token issued before is refused on its next request (401 ``session_revoked``),
and every refresh family is revoked, so no new access token can be had.

The last active admin cannot be disabled or demoted (409 ``last_admin``). On PostgreSQL
the active admins' rows are locked (``FOR UPDATE``, in id order) before the count, so two
concurrent demotions of the two last admins cannot both pass: the second waits, re-reads
and is refused. SQLite runs one writer at a time.

Input the schema refuses (a short password, an unknown role) is a 422 naming the field;
a well-formed request that a rule refuses is a 409 with the rule's own code, naming the
field too (``sites_required``, ``sites_not_allowed``, ``unknown_site``, ``last_admin``,
``own_password_reset``, ``password_unchanged``), as for participants (`api/services/rules.py`).
Nothing is written before every check has passed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select

from api.audit import SYSTEM, Actor, record_audit
from api.auth import hash_password, verify_password
from api.clock import utcnow
from api.errors import Conflict, Invalid, NotFound, Unauthorized
from api.extensions import db
from api.models import Site, StaffUser
from api.services.rules import Refused
from api.services.staff_rules import (
    ADMIN,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    check_password_rules,
    check_reset,
    end_sessions,
    keep_an_admin,
    lock_active_admins,
    locked,
    sites_for,
    staff_state,
)

__all__ = [
    "ADMIN",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "add_staff",
    "change_own_password",
    "check_password_rules",
    "get_staff",
    "reset_password",
    "set_active",
    "set_role",
    "staff_by_email",
    "staff_query",
    "staff_state",
    "update_staff",
]


def add_staff(
    email: str,
    role: str,
    site_codes: list[str],
    password: str,
    *,
    actor: Actor = SYSTEM,
    must_change_password: bool = False,
) -> StaffUser:
    """Create a staff account; coordinators need at least one site, others have all.

    An account an admin makes through the API has ``must_change_password`` set: the
    admin knows the first password, so the person replaces it at first sign-in.
    """
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid("email", "Not an e-mail address.")
    sites = sites_for(role, site_codes)
    check_password_rules(password)
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict(f"A staff account {email} exists already.", error="staff_exists")
    staff = StaffUser(
        email=email,
        password_hash=hash_password(password),
        role=role,
        is_active=True,
        created_at=utcnow(),
        auth_epoch=0,
        must_change_password=must_change_password,
        sites=sites,
    )
    db.session.add(staff)
    db.session.flush()
    record_audit(actor, "staff.created", "staff", staff.id, after=staff_state(staff))
    return staff


def staff_query(role: str | None = None, is_active: bool | None = None) -> Select[Any]:
    """Staff accounts, oldest first, optionally by role and by active state."""
    stmt = select(StaffUser).order_by(StaffUser.id)
    if role is not None:
        stmt = stmt.where(StaffUser.role == role)
    if is_active is not None:
        stmt = stmt.where(StaffUser.is_active.is_(is_active))
    return stmt


def get_staff(staff_id: int) -> StaffUser:
    staff = db.session.get(StaffUser, staff_id)
    if staff is None:
        raise NotFound("No such staff account.", error="staff_not_found")
    return staff


def staff_by_email(email: str) -> StaffUser:
    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if staff is None:
        raise NotFound(f"No staff account {email.strip().lower()}.", error="staff_not_found")
    return staff


def update_staff(
    actor: Actor,
    staff_id: int,
    *,
    reason: str,
    is_active: bool | None = None,
    role: str | None = None,
    site_codes: list[str] | None = None,
    password: str | None = None,
    require_password_change: bool = True,
) -> StaffUser:
    """Apply an admin's (or an operator's) changes to one account, all or nothing.

    Every value is checked before anything is written. ``role`` without ``site_codes``
    keeps the sites for a coordinator and drops them for the other roles (who see every
    site). ``password`` is a reset: the person's sessions end and, unless
    ``require_password_change`` is false (an operator's choice in the CLI), they must
    change it at their next sign-in.
    """
    if password is not None:
        check_reset(actor, staff_id, password)
    current = get_staff(staff_id)
    new_role = role if role is not None else current.role
    if site_codes is None and role is not None:
        site_codes = current.site_codes if new_role == "coordinator" else []
    new_sites = sites_for(new_role, site_codes) if site_codes is not None else None

    admins = lock_active_admins() if (is_active is False or role not in (None, ADMIN)) else None
    staff = locked(staff_id)
    before = staff_state(staff)
    keep_an_admin(staff, admins, is_active, role)
    actions = _apply(staff, is_active, role, new_sites, password, require_password_change)
    if not actions:
        return staff
    db.session.flush()
    after = staff_state(staff)
    for action in actions:
        record_audit(actor, action, "staff", staff.id, before=before, after=after, reason=reason)
    return staff


def _apply(
    staff: StaffUser,
    is_active: bool | None,
    role: str | None,
    sites: list[Site] | None,
    password: str | None,
    require_password_change: bool,
) -> list[str]:
    """Write the changes to the row; returns the audit actions, one per kind of change."""
    actions: list[str] = []
    if is_active is not None and is_active != staff.is_active:
        staff.is_active = is_active
        actions.append("staff.enabled" if is_active else "staff.disabled")
    role_changed = role is not None and role != staff.role
    sites_changed = sites is not None and {s.id for s in sites} != {s.id for s in staff.sites}
    if role_changed or sites_changed:
        if role is not None:
            staff.role = role
        if sites is not None:
            staff.sites = sites
        actions.append("staff.role_changed")
    if password is not None:
        staff.password_hash = hash_password(password)
        staff.must_change_password = require_password_change
        actions.append("staff.password_reset")
    if "staff.disabled" in actions or "staff.password_reset" in actions:
        end_sessions(staff)
    return actions


def set_active(actor: Actor, staff_id: int, active: bool, reason: str) -> StaffUser:
    """Disable (ending every session at once) or re-enable an account."""
    return update_staff(actor, staff_id, is_active=active, reason=reason)


def set_role(
    actor: Actor, staff_id: int, role: str, site_codes: list[str] | None, reason: str
) -> StaffUser:
    """Change the role and sites; takes effect on the person's next request."""
    return update_staff(actor, staff_id, role=role, site_codes=site_codes, reason=reason)


def reset_password(
    actor: Actor, staff_id: int, password: str, reason: str, *, require_change: bool = True
) -> StaffUser:
    """Set another person's password; their sessions end and they change it at sign-in."""
    return update_staff(
        actor, staff_id, password=password, reason=reason, require_password_change=require_change
    )


def change_own_password(staff_id: int, current_password: str, new_password: str) -> StaffUser:
    """A staff member replaces their own password; every session of theirs ends.

    The current password is required: a wrong one answers 401 ``wrong_password`` naming
    ``current_password`` (the token itself is fine: clients tell the two 401s apart by
    ``error``; failures count against the per-account limit). The caller gives the person
    a fresh session (the API answers a new token pair; the console stores the new
    ``auth_epoch``).
    """
    check_password_rules(new_password, "new_password")
    staff = locked(staff_id)
    if not verify_password(staff.password_hash, current_password):
        raise Unauthorized(
            "This is not your current password.",
            error="wrong_password",
            errors={"current_password": ["This is not your current password."]},
        )
    if current_password == new_password:
        raise Refused(
            "new_password",
            "Choose a password other than the current one.",
            error="password_unchanged",
        )
    before = staff_state(staff)
    staff.password_hash = hash_password(new_password)
    staff.must_change_password = False
    end_sessions(staff)
    record_audit(
        ("staff", staff.id),
        "staff.password_changed",
        "staff",
        staff.id,
        before=before,
        after=staff_state(staff),
        reason="own password change",
    )
    return staff
