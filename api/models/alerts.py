"""Alerts: the review tasks coordinators act on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, UTCDateTime, one_of

ALERT_KINDS = ("symptom", "symptom_urgent", "missed_diary", "serious_adverse_event")
ALERT_STATUSES = ("open", "acknowledged")
ALERT_DECISIONS = ("not_adverse_event", "adverse_event_recorded")


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_site_status", "site_id", "status"),
        one_of("kind", ALERT_KINDS),
        one_of("status", ALERT_STATUSES),
        one_of("decision", ALERT_DECISIONS),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id"), index=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20), default="open")
    # What makes this alert unique (e.g. "symptom:entry:42"): the database refuses a twin.
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    diary_entry_id: Mapped[int | None] = mapped_column(ForeignKey("diary_entries.id"))
    adverse_event_id: Mapped[int | None] = mapped_column(ForeignKey("adverse_events.id"))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str | None] = mapped_column(String(30))
