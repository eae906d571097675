"""The append-only audit trail: who changed what, when and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, between, one_of

ACTOR_TYPES = ("staff", "participant", "system")


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id"),
        UniqueConstraint("chain_key", "seq"),
        one_of("actor_type", ACTOR_TYPES),
        between("seq", 1),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_type: Mapped[str] = mapped_column(String(20))  # staff | participant | system
    actor_id: Mapped[int | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int] = mapped_column()
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id"), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    # Tamper evidence: each row hashes its content and the previous row of its chain
    # (filled by api/chain.py when the row is inserted).
    chain_key: Mapped[str | None] = mapped_column(String(64), index=True)
    seq: Mapped[int | None] = mapped_column()
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))


class ChainHead(Base):
    """The newest link of each hash chain (one row per participant, a few for the rest).

    Writers of one chain lock this row, so they take turns; other chains never wait.
    """

    __tablename__ = "chain_heads"
    __table_args__ = (
        between("seq", 0),
        CheckConstraint("length(head_hash) = 64", name="head_hash"),
    )

    chain_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column()
    head_hash: Mapped[str] = mapped_column(String(64))
