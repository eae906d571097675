"""The protocol's infusions, lab visits and follow-up contacts of each participant."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, between, one_of

EVENT_KINDS = ("infusion", "lab_visit", "follow_up")
EVENT_STATUSES = ("scheduled", "completed", "missed", "cancelled")


class ScheduleEvent(Base):
    __tablename__ = "schedule_events"
    __table_args__ = (
        UniqueConstraint("participant_id", "kind", "number"),
        # A participant's scheduled events by date: the worklist's week, the planner's chunks.
        Index(
            "ix_schedule_events_participant_status_target",
            "participant_id",
            "status",
            "target_date",
        ),
        one_of("kind", EVENT_KINDS),
        one_of("status", EVENT_STATUSES),
        between("number", 1),
        between("month", 0),
        between("version", 1),
        # The protocol window stays around the planned date when the target moves.
        CheckConstraint("window_start <= window_end", name="window"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    number: Mapped[int] = mapped_column()  # 1-based within its kind
    month: Mapped[int] = mapped_column()  # protocol month after enrolment
    planned_date: Mapped[date] = mapped_column(Date)  # as first computed; never rewritten
    target_date: Mapped[date] = mapped_column(Date)
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    actual_date: Mapped[date | None] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
