"""Diary entries (current state) and their versions (every state they ever had)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any, TypeAlias

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Row,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.models.base import Base, UTCDateTime, between, one_of

SCORE_FIELDS = (
    "abdominal_distension",
    "decreased_appetite",
    "debilitation",
    "leg_edema",
    "discomfort_grade",
)
ENTRY_SOURCES = ("participant", "staff")
VERSION_ACTOR_TYPES = ("participant", "staff")
SCORE_MAX = 4
# A UTC offset as Python's datetime allows it (strictly within ±24 h), in minutes.
OFFSET_MINUTES_MAX = 24 * 60 - 1


def utc_offset_minutes(value: datetime) -> int:
    """The UTC offset of an aware instant in whole minutes, as entries store it."""
    offset = value.utcoffset()
    assert offset is not None, "aware datetimes only"
    return int(offset.total_seconds() // 60)


def _entry_checks() -> tuple[CheckConstraint, ...]:
    """What entries and their versions share: scores 0-4, a known source, a real offset."""
    return (
        *(between(name, 0, SCORE_MAX) for name in SCORE_FIELDS),
        one_of("source", ENTRY_SOURCES),
        between("recorded_offset_minutes", -OFFSET_MINUTES_MAX, OFFSET_MINUTES_MAX),
        between("version", 1),
    )


class DiaryEntry(Base):
    __tablename__ = "diary_entries"
    __table_args__ = (
        # The database, not Python, settles "one entry per day" and "replay is not a new row".
        UniqueConstraint("participant_id", "diary_date"),
        UniqueConstraint("participant_id", "client_entry_id"),
        Index("ix_diary_entries_date_participant", "diary_date", "participant_id"),
        # One participant's days with their lateness, answered from the index alone.
        Index(
            "ix_diary_entries_participant_day_late", "participant_id", "diary_date", "late", "id"
        ),
        *_entry_checks(),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    diary_date: Mapped[date] = mapped_column(Date)
    client_entry_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    abdominal_distension: Mapped[int] = mapped_column(SmallInteger)
    decreased_appetite: Mapped[int] = mapped_column(SmallInteger)
    debilitation: Mapped[int] = mapped_column(SmallInteger)
    leg_edema: Mapped[int] = mapped_column(SmallInteger)
    discomfort_grade: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The device's UTC offset when it recorded the entry, kept so the original
    # `recorded_at` can be shown exactly as the phone sent it.
    recorded_offset_minutes: Mapped[int] = mapped_column()
    timezone: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    late: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(20))
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    versions: Mapped[list[DiaryEntryVersion]] = relationship(
        back_populates="entry", order_by="DiaryEntryVersion.version"
    )  # loaded where shown: `selectinload` in `services.diary`


# An entry as stored: its ORM object, its `diary_entries` row as Core read or returned
# it (a submit's), or the row a submit is about to store, as a namespace (its history is
# made before the one statement that inserts both). All carry the columns as attributes,
# which is all their readers use.
StoredEntry: TypeAlias = DiaryEntry | Row[Any] | SimpleNamespace


class DiaryEntryVersion(Base):
    """An immutable snapshot of an entry: version 1 is the original submission."""

    __tablename__ = "diary_entry_versions"
    __table_args__ = (
        UniqueConstraint("entry_id", "version"),
        UniqueConstraint("chain_key", "seq"),
        *_entry_checks(),
        one_of("actor_type", VERSION_ACTOR_TYPES),
        between("seq", 1),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("diary_entries.id"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    version: Mapped[int] = mapped_column()
    diary_date: Mapped[date] = mapped_column(Date)
    abdominal_distension: Mapped[int] = mapped_column(SmallInteger)
    decreased_appetite: Mapped[int] = mapped_column(SmallInteger)
    debilitation: Mapped[int] = mapped_column(SmallInteger)
    leg_edema: Mapped[int] = mapped_column(SmallInteger)
    discomfort_grade: Mapped[int] = mapped_column(SmallInteger)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_offset_minutes: Mapped[int] = mapped_column()
    source: Mapped[str] = mapped_column(String(20))
    actor_type: Mapped[str] = mapped_column(String(20))  # participant | staff
    actor_id: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)
    # Tamper evidence, as in the audit trail (one chain per participant, shared with it).
    chain_key: Mapped[str | None] = mapped_column(String(64))
    seq: Mapped[int | None] = mapped_column()
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    row_hash: Mapped[str | None] = mapped_column(String(64))

    entry: Mapped[DiaryEntry] = relationship(back_populates="versions")


class ExcusedDay(Base):
    """A day a coordinator excused (a hospital stay): out of the expected count, no alerts."""

    __tablename__ = "excused_days"
    __table_args__ = (UniqueConstraint("participant_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"))
    day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    created_by_staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
