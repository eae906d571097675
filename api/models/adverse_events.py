"""Adverse events recorded by sites, with the 24-hour clock of serious ones."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, SmallInteger, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, between, one_of

SERIOUSNESS_CRITERIA = ("fatal", "life_threatening", "permanently_disabling", "tumour")
AE_GRADE_MAX = 4
AE_RELATIONS = ("not_related", "unlikely", "possible", "probable", "definite")
AE_OUTCOMES = (
    "recovered",
    "recovering",
    "not_recovered",
    "recovered_with_sequelae",
    "fatal",
    "unknown",
)


class AdverseEvent(Base):
    __tablename__ = "adverse_events"
    # One record per (participant, Idempotency-Key): the database settles a retried or
    # concurrent create. A unique index (not a table constraint) so SQLite adds it in place.
    __table_args__ = (
        Index(
            "uq_adverse_events_participant_id_idempotency_key",
            "participant_id",
            "idempotency_key",
            unique=True,
        ),
        between("grade", 0, AE_GRADE_MAX),
        one_of("relation_to_infusion", AE_RELATIONS),
        one_of("outcome", AE_OUTCOMES),
        between("version", 1),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    term: Mapped[str] = mapped_column(String(200))
    onset_date: Mapped[date] = mapped_column(Date)
    grade: Mapped[int] = mapped_column(SmallInteger)
    seriousness: Mapped[list[str]] = mapped_column(JSON, default=list)
    relation_to_infusion: Mapped[str] = mapped_column(String(30))
    outcome: Mapped[str] = mapped_column(String(30))
    diary_entry_id: Mapped[int | None] = mapped_column(ForeignKey("diary_entries.id"))
    awareness_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    # The create request's Idempotency-Key and the SHA-256 of its canonical body, if given.
    idempotency_key: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    request_hash: Mapped[str | None] = mapped_column(String(64))

    @property
    def serious(self) -> bool:
        return bool(self.seriousness)
