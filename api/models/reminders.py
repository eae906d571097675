"""Planned reminders and each delivery attempt of them."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, between, one_of

REMINDER_KINDS = ("infusion", "visit", "diary")
REMINDER_STATUSES = (
    "planned",
    "sending",
    "sent",
    "expired",
    "cancelled",
    "failed",
    "undeliverable",
)


class Reminder(Base):
    __tablename__ = "reminders"
    __table_args__ = (
        # The reminder's identity: planning twice never makes a second row.
        UniqueConstraint("participant_id", "kind", "target", "offset_days"),
        Index("ix_reminders_due", "status", "due_at"),
        # The planner's still-useful reminders of a chunk: expiry checked in the index.
        Index("ix_reminders_participant_expires", "participant_id", "expires_at"),
        one_of("kind", REMINDER_KINDS),
        one_of("status", REMINDER_STATUSES),
        between("attempts", 0),
        between("offset_days", 0),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    # "event:<id>:<target date>" or "diary:<day>": a moved event is a new target.
    target: Mapped[str] = mapped_column(String(64))
    schedule_event_id: Mapped[int | None] = mapped_column(ForeignKey("schedule_events.id"))
    target_date: Mapped[date] = mapped_column(Date)
    offset_days: Mapped[int] = mapped_column()
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="planned")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderDelivery(Base):
    """One message to one device for one attempt: the FCM message id or the error."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (between("attempt", 1),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    attempt: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(200))
    error_code: Mapped[str | None] = mapped_column(String(50))
    error: Mapped[str | None] = mapped_column(Text)
