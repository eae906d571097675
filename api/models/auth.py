"""Sign-in secrets: activation codes and refresh tokens, stored only as hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, one_of

SUBJECT_TYPES = ("staff", "participant")


class ActivationCode(Base):
    __tablename__ = "activation_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))


class RefreshToken(Base):
    """One link of a rotation family.

    A used link presented again within the grace period is a retry (a lost answer) and
    gets a fresh link of its own; later, it is a reuse and revokes the family. No link of
    a family outlives ``family_started_at`` plus the family's maximum age.
    """

    __tablename__ = "refresh_tokens"
    __table_args__ = (one_of("subject_type", SUBJECT_TYPES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    subject_type: Mapped[str] = mapped_column(String(20))  # "staff" | "participant"
    subject_id: Mapped[int] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(50))
    # When the family's first link was issued (sign-in or activation).
    family_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The link whose rotation issued this one; None for a family's first link.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("refresh_tokens.id"))
