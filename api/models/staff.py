"""Staff accounts: coordinators, monitors, admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from api.models.base import Base, UTCDateTime, between, one_of
from api.models.site import Site

STAFF_ROLES = ("coordinator", "monitor", "admin")
STAFF_LOCALES = ("zh-CN", "en")  # the console's languages

staff_sites = Table(
    "staff_sites",
    Base.metadata,
    Column("staff_id", ForeignKey("staff_users.id"), primary_key=True),
    Column("site_id", ForeignKey("sites.id"), primary_key=True),
)


class StaffUser(Base):
    __tablename__ = "staff_users"
    __table_args__ = (
        one_of("role", STAFF_ROLES),
        between("auth_epoch", 0),
        one_of("locale", STAFF_LOCALES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Bumped to revoke every access token issued before (lost phone, account change).
    auth_epoch: Mapped[int] = mapped_column(default=0)
    # The console language this person chose (zh-CN or en); None: the browser's.
    locale: Mapped[str | None] = mapped_column(String(10))
    # Set by an admin's password reset: the token then serves only the password change.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sites: Mapped[list[Site]] = relationship(secondary=staff_sites, lazy="selectin")

    @property
    def site_codes(self) -> list[str]:
        return sorted(site.code for site in self.sites)

    def __repr__(self) -> str:
        return f"<StaffUser {self.email} {self.role}>"
