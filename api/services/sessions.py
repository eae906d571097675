"""Sign-in: staff passwords, participant activation codes, refresh-token rotation."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update

from api.audit import record_audit
from api.auth import (
    PARTICIPANT,
    hash_password,
    hash_secret,
    password_needs_rehash,
    verify_password,
)
from api.clock import utcnow
from api.errors import Unauthorized
from api.extensions import db, dml_result
from api.models import ActivationCode, Participant, StaffUser
from api.services.session_refresh import (
    SUPERSEDED,
    RefreshReused,
    TokenPair,
    active_session_count,
    issue_pair,
    logout,
    refresh_session,
    revoke_all_sessions,
)

__all__ = [
    "SUPERSEDED",
    "RefreshReused",
    "TokenPair",
    "activate_participant",
    "active_session_count",
    "authenticate_staff",
    "login_staff",
    "logout",
    "normalise_activation_code",
    "refresh_session",
    "revoke_all_sessions",
    "start_staff_session",
]


def normalise_activation_code(code: str) -> str:
    """Codes are shown as ``ABCD-EFGH-JKMN``; accept any case, spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def authenticate_staff(email: str, password: str) -> StaffUser:
    """The staff member with this e-mail and password, signed in now (API and console).

    An unknown e-mail costs one argon2 run too, and a disabled account answers the same
    401 ``invalid_credentials``, so neither can be told from a wrong password. A hash made
    with older argon2 parameters is replaced while the clear password is at hand. The
    caller commits (the new hash and ``last_sign_in_at``); a flagged account
    (``must_change_password``) signs in, and its token then serves only the change.
    """
    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    ok = verify_password(staff.password_hash if staff else None, password)
    if staff is None or not ok or not staff.is_active:
        raise Unauthorized("Wrong e-mail or password.", error="invalid_credentials")
    if password_needs_rehash(staff.password_hash):
        staff.password_hash = hash_password(password)
    staff.last_sign_in_at = utcnow()
    return staff


def start_staff_session(staff: StaffUser) -> TokenPair:
    """A new session family for a staff member already authenticated."""
    return issue_pair("staff", staff.id, staff.role, staff.auth_epoch, str(uuid.uuid4()))


def login_staff(email: str, password: str) -> TokenPair:
    """Check a staff member's password and start a new session family."""
    return start_staff_session(authenticate_staff(email, password))


def activate_participant(activation_code: str) -> TokenPair:
    """Exchange a one-time activation code for the phone's first token pair."""
    now = utcnow()
    code = db.session.scalar(
        select(ActivationCode).where(
            ActivationCode.code_hash == hash_secret(normalise_activation_code(activation_code))
        )
    )
    if code is None or code.used_at or code.revoked_at or code.expires_at <= now:
        raise Unauthorized("The activation code is not valid.", error="invalid_activation_code")
    # Claim it atomically: two phones racing with one code get one session.
    claimed = dml_result(
        db.session.execute(
            update(ActivationCode)
            .where(ActivationCode.id == code.id, ActivationCode.used_at.is_(None))
            .values(used_at=now)
        )
    )
    if claimed.rowcount != 1:
        raise Unauthorized("The activation code is not valid.", error="invalid_activation_code")
    participant = db.session.get(Participant, code.participant_id)
    if participant is None or not participant.is_active:
        raise Unauthorized("The activation code is not valid.", error="invalid_activation_code")
    record_audit(
        ("participant", participant.id),
        "participant.activated",
        "participant",
        participant.id,
        participant_id=participant.id,
    )
    return issue_pair(
        "participant", participant.id, PARTICIPANT, participant.auth_epoch, str(uuid.uuid4())
    )
