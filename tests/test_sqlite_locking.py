"""SQLite: reads in safe-method requests take no lock; writers take the write lock and queue."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from api import create_app
from api.extensions import db
from api.sqlite import takes_write_lock


@pytest.fixture
def sqlite_app(tmp_path) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """An app on a SQLite file of its own with one scratch table (no migrations needed)."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/locking.sqlite3",
            "AUTO_MIGRATE": False,
        }
    )
    with app.app_context():
        with db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
            conn.execute(text("INSERT INTO counter (n) VALUES (0)"))
        yield app
        db.engine.dispose()


def _impatient(conn: Connection) -> Connection:
    """Fail at once instead of waiting for a lock: a blocked write shows as an error."""
    conn.connection.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    return conn


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT n FROM counter")).scalar_one())


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_a_long_read_does_not_block_a_concurrent_write(sqlite_app, method):
    with sqlite_app.test_request_context(method=method):
        reader = db.engine.connect()
        reader.begin()
        assert _count(reader) == 0  # the read transaction is open and stays open
        with (
            sqlite_app.test_request_context(method="POST"),
            _impatient(db.engine.connect()) as writer,
            writer.begin(),
        ):
            writer.execute(text("UPDATE counter SET n = n + 1"))
        assert _count(reader) == 0  # the reader keeps its snapshot
        reader.rollback()
        assert _count(reader) == 1
        reader.close()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_two_writers_serialise(sqlite_app, method):
    with sqlite_app.test_request_context(method=method):
        first = db.engine.connect()
        first.begin()
        assert _count(first) == 0  # read first, write later: the lock is held already
        with _impatient(db.engine.connect()) as second:
            with pytest.raises(OperationalError, match="locked"):
                second.begin()
            first.execute(text("UPDATE counter SET n = n + 1"))
            first.commit()
            with second.begin():
                second.execute(text("UPDATE counter SET n = n + 1"))
            assert _count(second) == 2  # no update lost
        first.close()


def test_work_outside_a_request_takes_the_write_lock(sqlite_app):
    """The CLI, the worker and start-up read then write: they begin IMMEDIATE."""
    assert takes_write_lock()
    with (
        db.engine.connect() as first,
        first.begin(),
        _impatient(db.engine.connect()) as second,
        pytest.raises(OperationalError, match="locked"),
    ):
        second.begin()
