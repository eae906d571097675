"""What staff account changes share: password rules, sites per role, row locks, the last admin."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from api.audit import Actor
from api.auth import STAFF_ROLES
from api.errors import Conflict, Invalid, NotFound
from api.extensions import db
from api.models import Site, StaffUser
from api.services.rules import Refused
from api.services.sessions import revoke_all_sessions

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
ADMIN = "admin"


def check_password_rules(password: str, field: str = "password") -> None:
    """At least 12 characters (the issue's floor), at most 1024 (bounded KDF input)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(field, f"At least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(field, f"At most {MAX_PASSWORD_LENGTH} characters.")


def sites_for(role: str, site_codes: list[str]) -> list[Site]:
    """The sites a role may hold: coordinators at least one, monitors and admins none."""
    if role not in STAFF_ROLES:
        raise Invalid("role", f"Must be one of {', '.join(STAFF_ROLES)}.")
    if role == "coordinator" and not site_codes:
        raise Refused("sites", "A coordinator needs at least one site.", error="sites_required")
    if role != "coordinator" and site_codes:
        raise Refused(
            "sites", f"A {role} sees every site; give no sites.", error="sites_not_allowed"
        )
    sites = list(db.session.scalars(select(Site).where(Site.code.in_(site_codes))))
    unknown = sorted(set(site_codes) - {s.code for s in sites})
    if unknown:
        raise Refused("sites", f"Unknown site codes: {', '.join(unknown)}.", error="unknown_site")
    return sites


def staff_state(staff: StaffUser) -> dict[str, Any]:
    """What the audit trail keeps of an account (never the hash)."""
    return {
        "email": staff.email,
        "role": staff.role,
        "sites": staff.site_codes,
        "is_active": staff.is_active,
        "must_change_password": staff.must_change_password,
    }


def lock_active_admins() -> list[int]:
    """Lock every active admin's row (PostgreSQL; in id order, so lockers never deadlock)."""
    stmt = (
        select(StaffUser.id)
        .where(StaffUser.role == ADMIN, StaffUser.is_active.is_(True))
        .order_by(StaffUser.id)
        .with_for_update()
    )
    return list(db.session.scalars(stmt))


def locked(staff_id: int) -> StaffUser:
    """The account's row, locked and read afresh (another change may just have landed)."""
    stmt = (
        select(StaffUser)
        .where(StaffUser.id == staff_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    staff = db.session.scalar(stmt)
    if staff is None:
        raise NotFound("No such staff account.", error="staff_not_found")
    return staff


def end_sessions(staff: StaffUser) -> None:
    """Every access token of this person 401 from the next request; every refresh refused."""
    staff.auth_epoch += 1
    db.session.flush()
    revoke_all_sessions("staff", staff.id)


def check_reset(actor: Actor, staff_id: int, password: str) -> None:
    """A reset password follows the rules, and nobody resets their own."""
    check_password_rules(password)
    if actor == ("staff", staff_id):
        raise Conflict(
            "Change your own password with POST /api/v1/auth/staff/password.",
            error="own_password_reset",
        )


def keep_an_admin(
    staff: StaffUser, admins: list[int] | None, is_active: bool | None, role: str | None
) -> None:
    """Refuse a change that would leave no active admin (`admins` is the locked list)."""
    losing_admin = (
        staff.role == ADMIN
        and staff.is_active
        and (is_active is False or (role is not None and role != ADMIN))
    )
    if losing_admin and not [other for other in admins or () if other != staff.id]:
        raise Conflict(
            "This is the last active admin: make another admin first.", error="last_admin"
        )
