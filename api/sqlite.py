"""The embedded SQLite database: WAL, foreign keys, and a write lock only for writers.

How a transaction begins decides whether it blocks others:

- a request whose method is safe (GET, HEAD, OPTIONS) begins DEFERRED: it reads a WAL
  snapshot, takes no lock, and never holds up a writer however long it reads;
- every other request (POST, PUT, PATCH, DELETE), and everything outside a request (the
  CLI, the reminder worker, start-up), begins IMMEDIATE: it takes the write lock up front.

A read-then-write request is classified by its HTTP method, not by what it turns out to
do: a POST that first reads, then writes, holds the lock from its first read, so two of
them wait their turn (`busy_timeout`) instead of one failing with "database is locked"
when it tries to upgrade a stale snapshot. Safe methods therefore must not write (none
does). Work outside a request is assumed to write. A response body streamed after the
view has returned (the exports) runs outside its request, so it is treated as a writer:
the exporters read SQLite in short batches for that reason.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request
from sqlalchemy import Connection, Engine, event

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BUSY_TIMEOUT_MS = 30_000


def configure_sqlite(engine: Engine) -> None:
    """Install the connection pragmas and the per-request choice of BEGIN on `engine`."""
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _begin)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, open transactions (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def takes_write_lock() -> bool:
    """Whether a transaction begun now must hold the write lock (see the module's note)."""
    return not (has_request_context() and request.method in SAFE_METHODS)


def _begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if takes_write_lock() else "BEGIN")


def is_sqlite(app: Flask) -> bool:
    return str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite")
