"""Insert unless taken: one INSERT … ON CONFLICT DO NOTHING lets the database settle a race."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import ReturningInsert

from api.extensions import db

M = TypeVar("M")

# Built once per model, dialect and key: each call sends only the row as parameters.
_STATEMENTS: dict[tuple[type[Any], str, tuple[str, ...]], ReturningInsert[Any]] = {}


def insert_unless_taken(model: type[M], row: dict[str, Any], key: Sequence[str] = ()) -> M | None:
    """Insert `row` as a new `model`; None when a row with the same unique `key` exists
    (with no `key`: when any unique constraint already holds a row like it).

    The caller then fetches the stored row if it needs it (PostgreSQL's READ COMMITTED
    reads what committed before that next statement). One statement decides, also against
    a concurrent writer: PostgreSQL makes the second insert wait for the first transaction
    and then skip it; SQLite takes the write lock first. No savepoint and no exception
    path, so the caller's transaction is never disturbed, and a row breaking any other
    constraint still raises.
    """
    dialect = db.session.get_bind().dialect.name
    cache_key = (model, dialect, tuple(key))
    stmt = _STATEMENTS.get(cache_key)
    if stmt is None:
        stmt = _STATEMENTS[cache_key] = _statement(model, dialect, list(key))
    inserted: M | None = db.session.scalars(stmt, [row]).one_or_none()
    return inserted


def _statement(model: type[Any], dialect: str, key: list[str]) -> ReturningInsert[Any]:
    target = key or None
    if dialect == "postgresql":
        return pg_insert(model).on_conflict_do_nothing(index_elements=target).returning(model)
    return sqlite_insert(model).on_conflict_do_nothing(index_elements=target).returning(model)
