"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import CheckConstraint, DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

# The largest value of the database's `integer` (32-bit on PostgreSQL), which every id and
# count column is: ids, offsets and accepted integers are bounded by it, never overflow it.
INTEGER_MAX = 2**31 - 1

# Stable constraint names so Alembic can alter and drop them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: Iterable[str]) -> CheckConstraint:
    """CHECK that `column` holds one of `values` (NULL passes: nullability is separate).

    Named after the column, so the naming convention makes it ``ck_<table>_<column>``.
    """
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


def between(column: str, low: int, high: int | None = None) -> CheckConstraint:
    """CHECK that a number lies in [low, high] (no upper bound when `high` is None)."""
    if high is None:
        return CheckConstraint(f"{column} >= {low}", name=column)
    return CheckConstraint(f"{column} BETWEEN {low} AND {high}", name=column)


def local_time(column: str) -> CheckConstraint:
    """CHECK that a text is a local ``HH:MM`` (00:00 to 23:59).

    Written with equality only (``IN``), which means the same under every collation and
    on both databases; a range comparison of text would follow the database's collation.
    """
    hours = ", ".join(f"'{h:02d}'" for h in range(24))
    minutes = ", ".join(f"'{m:02d}'" for m in range(60))
    return CheckConstraint(
        f"length({column}) = 5 AND substr({column}, 3, 1) = ':' "
        f"AND substr({column}, 1, 2) IN ({hours}) AND substr({column}, 4, 2) IN ({minutes})",
        name=column,
    )


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored as UTC, always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
