"""Trial sites (hospitals)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from api.models.base import Base, between


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (between("next_participant_number", 1),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    # Next study-code number; bumped with UPDATE … RETURNING so enrolments never collide.
    next_participant_number: Mapped[int] = mapped_column(default=1)

    def __repr__(self) -> str:
        return f"<Site {self.code}>"
