"""Insert-or-fetch: one INSERT … ON CONFLICT DO NOTHING lets the database settle a race."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import ReturningInsert

from api.extensions import db

M = TypeVar("M")

_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


def insert_unless_taken(model: type[M], row: dict[str, Any], key: Sequence[str]) -> M | None:
    """Insert `row` as a new `model`; None when a row with the same unique `key` exists.

    One statement decides, also against a concurrent writer: PostgreSQL makes the second
    insert wait for the first transaction and then skip it; SQLite takes the write lock
    first. No savepoint and no exception path, so the caller's transaction is never
    disturbed, and any other constraint a row breaks still raises.
    """
    stmt = _statement(model, db.session.get_bind().dialect.name, tuple(key))
    return db.session.scalars(stmt, [row]).one_or_none()


def insert_or_fetch(
    model: type[M], row: dict[str, Any], key: Sequence[str], fetch: Callable[[], M | None]
) -> tuple[M, bool]:
    """The new row and True, or (when `key` was taken) the stored one from `fetch` and False.

    `fetch` runs after the insert was skipped, so it sees the row that won (PostgreSQL's
    READ COMMITTED reads what committed before the statement).
    """
    inserted = insert_unless_taken(model, row, key)
    if inserted is not None:
        return inserted, True
    stored = fetch()
    if stored is None:  # the conflicting row was deleted in between: not in this schema
        raise RuntimeError(f"{model.__name__} insert skipped without a row holding its key")
    return stored, False


@functools.cache
def _statement(model: type[Any], dialect: str, key: tuple[str, ...]) -> ReturningInsert[Any]:
    """Built once per model and dialect: each call sends only the row as parameters."""
    insert = _INSERTS[dialect]
    return insert(model).on_conflict_do_nothing(index_elements=list(key)).returning(model)
