"""Refresh tokens: issuing a pair, rotating it (a lost answer retried, a reuse caught), revoking."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import distinct, func, select, update

from api.auth import (
    PARTICIPANT,
    hash_secret,
    issue_access_token,
    new_secret,
)
from api.clock import utcnow
from api.errors import Unauthorized
from api.extensions import db, dml_result
from api.models import Participant, RefreshToken, StaffUser
from api.settings import settings

# The logger keeps the name it had before this module was split out of `sessions`.
log = logging.getLogger("api.services.sessions")
# The revocation reason of a link another link of its family replaced by being used.
SUPERSEDED = "superseded"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def issue_pair(
    kind: str,
    subject_id: int,
    role: str,
    epoch: int,
    family_id: str,
    *,
    family_started_at: datetime | None = None,
    parent_id: int | None = None,
) -> TokenPair:
    """Sign an access token and store a new refresh link of `family_id`.

    A new family (no `family_started_at`) starts now. No link lives past the family's
    start plus REFRESH_FAMILY_MAX_AGE, however often it is rotated.
    """
    now = utcnow()
    started = family_started_at or now
    config = settings()
    access, expires_in = issue_access_token(kind, subject_id, role, epoch)
    refresh = new_secret(32)
    db.session.add(
        RefreshToken(
            token_hash=hash_secret(refresh),
            family_id=family_id,
            subject_type=kind,
            subject_id=subject_id,
            issued_at=now,
            expires_at=min(now + config.refresh_token_ttl, started + config.refresh_family_max_age),
            family_started_at=started,
            parent_id=parent_id,
        )
    )
    return TokenPair(access, refresh, expires_in)


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


class RefreshReused(Unauthorized):
    """A used refresh token came back after the grace: its family is revoked.

    The revocation must outlive the 401, so the caller commits before answering.
    """

    error = "refresh_token_reused"


def _invalid_refresh() -> Unauthorized:
    return Unauthorized("The refresh token is not valid.", error="invalid_refresh_token")


def refresh_session(refresh_token: str) -> TokenPair:
    """Rotate a refresh token, tolerating a phone that lost the answer and retries.

    The first presentation claims the link with a conditional UPDATE and ends every other
    live link of the family (answers lost earlier). A link presented again within
    REFRESH_REUSE_GRACE of the moment it stopped being current (used, or superseded by a
    sibling) is a retry: it gets a fresh pair, a sibling of the one it got before, and
    whichever of them is used first supersedes the others. Later than that it is reuse:
    the whole family is revoked. So a concurrent double refresh never locks the phone out,
    and a thief's replay after the grace kills the thief's and the owner's links alike.
    """
    now = utcnow()
    config = settings()
    token = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(refresh_token))
    )
    if token is None or (token.revoked_at is not None and token.revoked_reason != SUPERSEDED):
        raise _invalid_refresh()
    if token.family_started_at + config.refresh_family_max_age <= now:
        raise Unauthorized(
            "This session has reached its maximum age; sign in again (a phone needs a new "
            "activation code from its site).",
            error="session_expired",
        )
    if token.expires_at <= now:
        raise _invalid_refresh()
    _lock_family(token.family_id)
    if _claim(token, now):
        _supersede_siblings(token, now)
    else:
        _accept_retry_or_revoke(token, now, config.refresh_reuse_grace)
    subject = _subject_still_valid(token)
    if subject is None:
        raise Unauthorized("The session is no longer valid.", error="session_revoked")
    role, epoch = subject
    return issue_pair(
        token.subject_type,
        token.subject_id,
        role,
        epoch,
        token.family_id,
        family_started_at=token.family_started_at,
        parent_id=token.id,
    )


def _lock_family(family_id: str) -> None:
    """One rotation of a family at a time (PostgreSQL row locks, in id order).

    Two siblings used at once would otherwise each lock its own row and then wait for
    the other's to supersede it: a deadlock. SQLite's write lock already serialises.
    """
    db.session.execute(
        select(RefreshToken.id)
        .where(RefreshToken.family_id == family_id)
        .order_by(RefreshToken.id)
        .with_for_update()
    ).all()


def _claim(token: RefreshToken, now: datetime) -> bool:
    """Mark a live link used; False when another request used or superseded it first."""
    claimed = dml_result(
        db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.id == token.id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
        )
    )
    return claimed.rowcount == 1


def _supersede_siblings(token: RefreshToken, now: datetime) -> None:
    """The phone kept `token`: its family's other live links were answers it never kept."""
    db.session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.family_id == token.family_id,
            RefreshToken.id != token.id,
            RefreshToken.used_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=SUPERSEDED)
    )


def _accept_retry_or_revoke(token: RefreshToken, now: datetime, grace: timedelta) -> None:
    """A link no longer current: a retry within the grace period, otherwise a reuse."""
    db.session.refresh(token)  # the claim or supersession another request committed
    if token.revoked_at is not None and token.revoked_reason != SUPERSEDED:
        raise _invalid_refresh()
    stopped = token.used_at or token.revoked_at
    if stopped is not None and now - stopped <= grace:
        return
    _revoke_family(token.family_id, now, "reuse_detected")
    log.warning("refresh token reuse: family %s revoked", token.family_id)
    raise RefreshReused("This refresh token was already used; the session has been revoked.")


def logout(refresh_token: str) -> None:
    """Revoke this refresh token's family; unknown tokens are ignored (logout is idempotent)."""
    token = db.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(refresh_token))
    )
    if token is not None:
        _revoke_family(token.family_id, utcnow(), "logout")


def revoke_all_sessions(subject_type: str, subject_id: int) -> int:
    """Revoke every refresh family of a subject; returns how many tokens were revoked."""
    revoked = dml_result(
        db.session.execute(
            update(RefreshToken)
            .where(
                RefreshToken.subject_type == subject_type,
                RefreshToken.subject_id == subject_id,
                RefreshToken.revoked_at.is_(None),
            )
            .values(revoked_at=utcnow(), revoked_reason="sessions_revoked")
        )
    )
    return revoked.rowcount


def active_session_count(subject_type: str, subject_id: int) -> int:
    """Families with a live link: a family briefly holds several after a retried refresh."""
    return (
        db.session.scalar(
            select(func.count(distinct(RefreshToken.family_id))).where(
                RefreshToken.subject_type == subject_type,
                RefreshToken.subject_id == subject_id,
                RefreshToken.revoked_at.is_(None),
                RefreshToken.used_at.is_(None),
            )
        )
        or 0
    )
