"""Staff accounts (created by operators from the CLI)."""

from __future__ import annotations

from sqlalchemy import select

from api.audit import SYSTEM, record_audit
from api.auth import STAFF_ROLES, hash_password
from api.clock import utcnow
from api.errors import Conflict, Invalid
from api.extensions import db
from api.models import Site, StaffUser

MIN_PASSWORD_LENGTH = 12


def add_staff(email: str, role: str, site_codes: list[str], password: str) -> StaffUser:
    """Create a staff account; coordinators need at least one site, others have all."""
    email = email.strip().lower()
    if "@" not in email:
        raise Invalid("email", "Not an e-mail address.")
    if role not in STAFF_ROLES:
        raise Invalid("role", f"Must be one of {', '.join(STAFF_ROLES)}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid("password", f"At least {MIN_PASSWORD_LENGTH} characters.")
    if role == "coordinator" and not site_codes:
        raise Invalid("site", "A coordinator needs at least one site.")
    if role != "coordinator" and site_codes:
        raise Invalid("site", f"A {role} sees every site; give no --site.")
    sites = list(db.session.scalars(select(Site).where(Site.code.in_(site_codes))))
    unknown = sorted(set(site_codes) - {s.code for s in sites})
    if unknown:
        raise Invalid("site", f"Unknown site codes: {', '.join(unknown)}.")
    if db.session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict(f"A staff account {email} exists already.", error="staff_exists")
    staff = StaffUser(
        email=email,
        password_hash=hash_password(password),
        role=role,
        is_active=True,
        created_at=utcnow(),
        auth_epoch=0,
        sites=sites,
    )
    db.session.add(staff)
    db.session.flush()
    record_audit(
        SYSTEM,
        "staff.created",
        "staff",
        staff.id,
        after={"email": email, "role": role, "sites": sorted(site_codes)},
    )
    return staff
