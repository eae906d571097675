"""Fixtures: the same suite on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.

Each backend gets a fresh database made by the migrations (PostgreSQL: a new database
per test run, dropped at the end, so parallel runs never meet). Tables are emptied
after every test; sites stay, as after a first start.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Connection, make_url, text

import api.auth
from api import create_app
from api.config import normalise_database_url
from api.db_roles import APPEND_ONLY_TABLES, MAINTENANCE_SETTING
from api.extensions import db, limiter_for
from api.models import Base
from api.services import entry_ids, login_throttle
from tests import socket_guard
from tests.helpers import Factory

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
KEPT_TABLES = {"sites", "alembic_version"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run `@pytest.mark.postgres_only` tests on the PostgreSQL backend alone.

    Their SQLite twins are deselected (not skipped): SQLite runs one worker and has no
    row locks to prove, so there is nothing to run there.
    """
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        elsewhere = backend not in (None, BACKENDS[0])
        if (item.get_closest_marker("first_backend_only") and elsewhere) or (
            item.get_closest_marker("postgres_only") and backend != "postgresql"
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", autouse=True)
def _loopback_only() -> Iterator[None]:
    """Sockets reach the loopback alone for the whole run (PostgreSQL, Redis, fake FCM,
    gunicorn and the browser all listen there); see `tests/socket_guard.py`."""
    socket_guard.install()
    yield
    socket_guard.uninstall()


@pytest.fixture(autouse=True)
def _no_outbound_attempt() -> Iterator[None]:
    """Fail the test if anything tried to reach beyond the loopback (DNS lookups included)."""
    socket_guard.attempts.clear()
    yield
    assert socket_guard.attempts == [], f"outbound connections attempted: {socket_guard.attempts}"


# The same argon2id at its lowest cost: at the production cost one hash or check takes
# 0.1-0.5 s on a busy 2-core machine and the suite signs in thousands of times. It differs
# from the "older parameters" test_staff_lifecycle.py rehashes from (memory 1024 KiB).
TEST_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=2048, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Every in-process sign-in hashes at the test cost; subprocesses keep the real one."""
    patch = pytest.MonkeyPatch()
    patch.setattr(api.auth, "_password_hasher", TEST_PASSWORD_HASHER)
    patch.setattr(api.auth, "_DUMMY_HASH", TEST_PASSWORD_HASHER.hash(uuid.uuid4().hex))
    yield
    patch.undo()


class Clock:
    """A clock tests can stop at a chosen instant; runs in real time until set."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)

    def set(self, value: datetime | str) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            raise ValueError("give the clock an aware datetime")
        self.fixed = value.astimezone(UTC)
        return self.fixed

    def reset(self) -> None:
        self.fixed = None


def _create_pg_database() -> str:
    import psycopg

    assert PG_URL is not None
    admin_url = make_url(normalise_database_url(PG_URL))
    name = f"diary_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(
        admin_url.set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.set(database=name).render_as_string(hide_password=False)


def _drop_pg_database(url: str) -> None:
    import psycopg

    assert PG_URL is not None
    admin_url = make_url(normalise_database_url(PG_URL)).set(drivername="postgresql")
    name = make_url(url).database
    with psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "diary.sqlite3"
        yield f"sqlite:///{path}"
        return
    url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def app(database_url: str, clock: Clock) -> Iterator[Flask]:
    application = create_app(
        {
            "TESTING": True,
            "APP_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "AUTO_MIGRATE": True,
            "CLOCK": clock,
        }
    )
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest, clock: Clock) -> Iterator[None]:
    """Empty every table but `sites` after each test; reset the clock and rate limits."""
    yield
    clock.reset()
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    with application.app_context():
        limiter_for(application).reset()
        login_throttle.reset(application)
        db.session.remove()
        tables = [t.name for t in Base.metadata.sorted_tables if t.name not in KEPT_TABLES]
        with db.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                _empty_postgresql_tables(conn, tables)
            else:
                for name in reversed(tables):
                    conn.execute(text(f"DELETE FROM {name}"))
            conn.execute(text("UPDATE sites SET next_participant_number = 1"))
        entry_ids.forget_all()  # reserved ids are the reset sequence's to give again


def _empty_postgresql_tables(conn: Connection, tables: list[str]) -> None:
    """Every row gone and every id sequence back at 1, as after TRUNCATE … RESTART IDENTITY.

    TRUNCATE gives each table and index a new file: 60-90 ms for all of them, after every
    one of hundreds of tests. DELETE of a test's few rows takes a fraction of that. Only the
    append-only tables, which refuse DELETE, are truncated (in a maintenance session, 0008).
    The lock waits, as TRUNCATE's did, for a writer still open (a served request's
    transaction), so none commits its rows after the DELETE into the next test.
    """
    conn.execute(text(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE"))
    conn.execute(text(f"SET LOCAL {MAINTENANCE_SETTING} = 'on'"))
    truncated = [name for name in tables if name in APPEND_ONLY_TABLES]
    conn.execute(text(f"TRUNCATE {', '.join(truncated)} RESTART IDENTITY"))
    for name in reversed(tables):
        if name not in APPEND_ONLY_TABLES:
            conn.execute(text(f"DELETE FROM {name}"))
    sequences = conn.execute(_OWNED_SEQUENCES, {"tables": tables}).scalars().all()
    conn.execute(text(f"SELECT {', '.join(f'setval({s!r}, 1, false)' for s in sequences)}"))


# The sequences behind the tables' serial columns (what RESTART IDENTITY resets).
_OWNED_SEQUENCES = text(
    "SELECT sequence.oid::regclass::text FROM pg_class AS sequence "
    "JOIN pg_depend ON pg_depend.objid = sequence.oid AND pg_depend.deptype IN ('a', 'i') "
    "JOIN pg_class AS owner ON owner.oid = pg_depend.refobjid "
    "WHERE sequence.relkind = 'S' AND owner.relname = ANY(:tables)"
)


@pytest.fixture
def backend(app: Flask) -> str:
    return (
        "postgresql" if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql") else "sqlite"
    )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def factory(app: Flask, client: FlaskClient, clock: Clock) -> Factory:
    return Factory(app, client, clock)
