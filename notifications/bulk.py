"""Bulk inserts for planning and recording: COPY on PostgreSQL, executemany on SQLite.

Multi-row ``INSERT … VALUES`` statements with thousands of placeholders cost more to
build and parse than to run; COPY streams the rows instead. Rows are dicts keyed by
column name; every row carries the same keys.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.dialects import sqlite

from api.extensions import db


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _copy(table: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    raw: Any = db.session.connection().connection.driver_connection  # psycopg's
    names = ", ".join(columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def insert_rows(table: Table, rows: list[dict[str, Any]]) -> None:
    """Append rows (no conflicts expected)."""
    if not rows:
        return
    if _is_postgresql():
        _copy(table.name, list(rows[0]), rows)
    else:
        db.session.execute(insert(table), rows)


def insert_missing(table: Table, key: list[str], rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose `key` is not taken yet (a concurrent writer's row wins).

    Returns how many were inserted. PostgreSQL: COPY into a temporary table dropped at
    commit, then one ``INSERT … SELECT … ON CONFLICT DO NOTHING``.
    """
    if not rows:
        return 0
    columns = list(rows[0])
    names = ", ".join(columns)
    if not _is_postgresql():
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=key)
        return len(db.session.execute(stmt.returning(table.c[key[0]]), rows).all())
    staging = f"{table.name}_staging"
    conn = db.session.connection()
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {staging} ON COMMIT DROP AS "
        f"SELECT {names} FROM {table.name} WITH NO DATA"
    )
    conn.exec_driver_sql(f"TRUNCATE {staging}")
    _copy(staging, columns, rows)
    result = conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
        f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
    )
    return result.rowcount
