"""Sign-in: staff passwords, participant activation codes, refresh-token rotation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, update

from api.audit import record_audit
from api.auth import (
    PARTICIPANT,
    hash_secret,
    issue_access_token,
    new_secret,
    verify_password,
)
from api.clock import utcnow
from api.errors import Unauthorized
from api.extensions import db
from api.models import ActivationCode, Participant, RefreshToken, StaffUser


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def _issue_pair(kind: str, subject_id: int, role: str, epoch: int, family_id: str) -> TokenPair:
    now = utcnow()
    access, expires_in = issue_access_token(kind, subject_id, role, epoch)
    refresh = new_secret(32)
    db.session.add(
        RefreshToken(
            token_hash=hash_secret(refresh),
            family_id=family_id,
            subject_type=kind,
            subject_id=subject_id,
            issued_at=now,
            expires_at=now + current_app.config["REFRESH_TOKEN_TTL"],
        )
    )
    return TokenPair(access, refresh, expires_in)


def normalise_activation_code(code: str) -> str:
    """Codes are shown as ``ABCD-EFGH-JKMN``; accept any case, spaces or dashes."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def authenticate_staff(email: str, password: str) -> StaffUser:
    """The active staff member with this e-mail and password (the API's and the console's
    one password check); 401 `invalid_credentials` otherwise, at the same cost."""
    staff = db.session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    ok = verify_password(staff.password_hash if staff else None, password)
    if staff is None or not ok or not staff.is_active:
        raise Unauthorized("Wrong e-mail or password.", error="invalid_credentials")
    return staff


def login_staff(email: str, password: str) -> TokenPair:
    """Check a staff member's password and start a new session family."""
    staff = authenticate_staff(email, password)
    return _issue_pair("staff", staff.id, staff.role, staff.auth_epoch, str(uuid.uuid4()))


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
    claimed = db.session.execute(
        update(ActivationCode)
        .where(ActivationCode.id == code.id, ActivationCode.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
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
    return _issue_pair(
        "participant", participant.id, PARTICIPANT, participant.auth_epoch, str(uuid.uuid4())
    )


def _revoke_family(family_id: str, now: datetime, reason: str) -> None:
    db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def _subject_still_valid(token: RefreshToken) -> tuple[str, int] | None:
    """The subject's (role, epoch) if it may still sign in, else None."""
    if token.subject_type == "staff":
        staff = db.session.get(StaffUser, token.subject_id)
        return (staff.role, staff.auth_epoch) if staff and staff.is_active else None
    participant = db.session.get(Participant, token.subject_id)
    if participant and participant.is_active:
        return PARTICIPANT, participant.auth_epoch
    return None


def refresh_session(refresh_token: str) -> TokenPair:
    """Rotate a refresh token. A used one presented again revokes its whole family.

    The rotation is claimed with a conditional UPDATE, so two concurrent uses of the same
    token cannot both succeed: the loser is treated as a reuse.
    """
    now = utcnow()
    token = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(refresh_token))
    )
    if token is None:
        raise Unauthorized("The refresh token is not valid.", error="invalid_refresh_token")
    if token.revoked_at is not None or token.expires_at <= now:
        raise Unauthorized("The refresh token is not valid.", error="invalid_refresh_token")
    claimed = db.session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if claimed != 1:
        _revoke_family(token.family_id, now, "reuse_detected")
        db.session.commit()
        raise Unauthorized(
            "This refresh token was already used; the session has been revoked.",
            error="refresh_token_reused",
        )
    subject = _subject_still_valid(token)
    if subject is None:
        raise Unauthorized("The session is no longer valid.", error="session_revoked")
    role, epoch = subject
    return _issue_pair(token.subject_type, token.subject_id, role, epoch, token.family_id)


def logout(refresh_token: str) -> None:
    """Revoke this refresh token's family; unknown tokens are ignored (logout is idempotent)."""
    token = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(refresh_token))
    )
    if token is not None:
        _revoke_family(token.family_id, utcnow(), "logout")


def revoke_all_sessions(subject_type: str, subject_id: int) -> int:
    """Revoke every refresh family of a subject; returns how many tokens were revoked."""
    return db.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.subject_type == subject_type,
            RefreshToken.subject_id == subject_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow(), revoked_reason="sessions_revoked")
    ).rowcount


def active_session_count(subject_type: str, subject_id: int) -> int:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(
                RefreshToken.subject_type == subject_type,
                RefreshToken.subject_id == subject_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.used_at.is_(None),
            )
        )
        or 0
    )
