"""Participants: pseudonymous (study code only, no names stored anywhere)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.models.base import Base, UTCDateTime, between, local_time, one_of
from api.models.site import Site

ARMS = ("msc", "control")
ACTIVE = "active"
PARTICIPANT_STATUSES = (ACTIVE, "withdrawn", "completed", "deceased")
LOCALES = ("zh-CN", "en")


class ParticipantFacts(Protocol):
    """What the rules of a request read of a participant: the ORM object, or the row as read
    at authentication (`Principal.participant_row`), which a diary submit uses as it is."""

    @property
    def id(self) -> int: ...
    @property
    def site_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def enrolled_on(self) -> date: ...


class Participant(Base):
    __tablename__ = "participants"
    __table_args__ = (
        one_of("arm", ARMS),
        one_of("status", PARTICIPANT_STATUSES),
        one_of("locale", LOCALES),
        local_time("reminder_time"),
        local_time("diary_reminder_time"),
        between("auth_epoch", 0),
        between("version", 1),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_code: Mapped[str] = mapped_column(String(20), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), index=True)
    arm: Mapped[str] = mapped_column(String(20))
    enrolled_on: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default=ACTIVE, index=True)
    status_reason: Mapped[str | None] = mapped_column(String(1000))
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The participant's local day of that change: the diary is expected on the days
    # before it. Stored so compliance is plain date arithmetic on every database.
    status_changed_on: Mapped[date | None] = mapped_column(Date)
    reminder_time: Mapped[str] = mapped_column(String(5))
    diary_reminder_time: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Bumped to revoke every access token issued before (lost phone, account change).
    auth_epoch: Mapped[int] = mapped_column(default=0)
    created_by_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # Bumped on every change to the row; the ETag of `GET /me` and staff views.
    version: Mapped[int] = mapped_column(default=1)

    site: Mapped[Site] = relationship(lazy="joined", innerjoin=True)

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    def __repr__(self) -> str:
        return f"<Participant {self.study_code}>"
