"""PostgreSQL defends the audit trail against the service's own role (issue 9, part 5).

The test database is owned by the superuser the suite connects as (the migration role's
stand-in). `db grant-app-role` makes an application role, unique to this run (roles are
cluster-wide) and dropped after it; the tests connect as that role and show what the
database refuses it, and that the service works normally as it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from flask import Flask
from flask_migrate.cli import db as migrate_cli
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from api import create_app
from api.audit import record_audit
from api.chain import verify_chains
from api.db_roles import MAINTENANCE_SETTING
from api.extensions import db
from api.models import AuditEvent, ChainHead, DiaryEntryVersion
from tests.conftest import PG_URL
from tests.helpers import Factory

pytestmark = pytest.mark.postgres_only

ROLE_PASSWORD = "app-role-password-not-checked-under-trust-auth"
PROTECTED = ("audit_events", "diary_entry_versions", "chain_heads")


def _admin(url: str) -> psycopg.Connection:
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(plain, autocommit=True)


def _drop_role(database_url: str, role: str) -> None:
    with _admin(database_url) as conn:
        conn.execute(f'DROP OWNED BY "{role}"')  # its grants and default privileges here
        conn.execute(f'DROP ROLE "{role}"')


def _grant(app: Flask, role: str, password: str | None = ROLE_PASSWORD):  # type: ignore[no-untyped-def]
    args = ["grant-app-role", role] + (["--password-stdin"] if password else [])
    runner = app.test_cli_runner()
    return runner.invoke(migrate_cli, args, input=f"{password}\n" if password else None)


def _as_role(database_url: str, role: str) -> str:
    return (
        make_url(database_url)
        .set(username=role, password=ROLE_PASSWORD)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def app_role(app: Flask, database_url: str) -> Iterator[str]:
    role = f"diary_app_{uuid.uuid4().hex[:10]}"
    result = _grant(app, role)
    assert result.exit_code == 0, result.output
    try:
        yield role
    finally:
        _drop_role(database_url, role)


@pytest.fixture(scope="session")
def role_engine(database_url: str, app_role: str) -> Iterator[Engine]:
    engine = create_engine(_as_role(database_url, app_role), poolclass=NullPool)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def role_app(app: Flask, database_url: str, app_role: str, clock) -> Iterator[Flask]:  # type: ignore[no-untyped-def]
    """The service as production runs it: connected as the application role."""
    application = create_app(
        {
            "TESTING": True,
            "APP_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": _as_role(database_url, app_role),
            "AUTO_MIGRATE": False,
            "CLOCK": clock,
        }
    )
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def some_history(factory: Factory) -> None:
    """A participant with audit rows, a diary version and a chain head."""
    from tests.test_tamper_evidence import diary_entry

    participant = factory.participant()
    diary_entry(factory.app, participant, date(2026, 1, 2), versions=2)


def _refused(engine: Engine, sql: str) -> str:
    with engine.connect() as conn, pytest.raises(DBAPIError) as refused:
        conn.execute(text(sql))
    return str(refused.value.orig)


# --- what the application role may not do -----------------------------------------------------

REWRITES = [
    f"{verb} {table}" for table in PROTECTED for verb in ("UPDATE", "DELETE", "TRUNCATE")
] + ["INSERT chain_heads"]


def _statement(rewrite: str) -> str:
    verb, table = rewrite.split()
    column = {"audit_events": "reason", "diary_entry_versions": "note"}.get(table, "seq")
    value = "0" if column == "seq" else "'rewritten'"
    return {
        "UPDATE": f"UPDATE {table} SET {column} = {value}",
        "DELETE": f"DELETE FROM {table}",
        "TRUNCATE": f"TRUNCATE {table} CASCADE",
        "INSERT": f"INSERT INTO {table} VALUES ('x', 0, repeat('0', 64))",
    }[verb]


@pytest.mark.parametrize("rewrite", REWRITES)
def test_the_app_role_may_not_rewrite_the_audit_trail(app, role_engine, some_history, rewrite):
    message = _refused(role_engine, _statement(rewrite))
    assert "permission denied" in message
    with app.app_context(), db.engine.connect() as conn:
        report = verify_chains(conn)
    assert report.ok and report.rows == {"audit_events": 1, "diary_entry_versions": 2}
    assert report.chains == 1


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "ALTER TABLE diary_entry_versions DISABLE TRIGGER ALL",
        "ALTER TABLE chain_heads DISABLE TRIGGER chain_heads_no_truncate",
        "DROP TRIGGER audit_events_link ON audit_events",
        "CREATE TRIGGER t BEFORE INSERT ON audit_events FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "ALTER TABLE audit_events DROP CONSTRAINT ck_audit_events_actor_type",
        "ALTER FUNCTION link_chain_row() SECURITY INVOKER",
        "SET session_replication_role = replica",
        "CREATE TABLE audit_shadow (id integer)",
    ],
)
def test_the_app_role_may_not_switch_the_guards_off(role_engine, sql):
    message = _refused(role_engine, sql)
    assert "must be owner" in message or "permission denied" in message, message


def test_the_app_role_owns_nothing_and_reads_what_it_needs(app, role_engine, app_role):
    with app.app_context(), db.engine.connect() as conn:
        owned = conn.scalar(
            text("SELECT count(*) FROM pg_tables WHERE tableowner = :r"), {"r": app_role}
        )
        grants = conn.execute(
            text(
                "SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) "
                "FROM information_schema.role_table_grants WHERE grantee = :r "
                "GROUP BY table_name"
            ),
            {"r": app_role},
        ).all()
    assert owned == 0
    privileges = dict(grants)
    assert privileges["audit_events"] == "INSERT,SELECT"
    assert privileges["diary_entry_versions"] == "INSERT,SELECT"
    assert privileges["chain_heads"] == "SELECT"
    assert privileges["alembic_version"] == "SELECT"
    assert privileges["participants"] == "DELETE,INSERT,SELECT,UPDATE"
    assert not [t for t, p in privileges.items() if "TRUNCATE" in p or "TRIGGER" in p]
    with role_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ChainHead)) == 0


# --- TRUNCATE: refused for everyone without the maintenance switch ----------------------------


@pytest.mark.parametrize("table", [*PROTECTED, "participants"])
def test_the_owner_too_may_not_truncate_without_the_maintenance_switch(app, some_history, table):
    with app.app_context(), db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="TRUNCATE refused"):
            conn.execute(text(f"TRUNCATE {table} CASCADE"))  # participants cascades to audit
        conn.rollback()
        assert conn.scalar(select(func.count()).select_from(AuditEvent)) == 1
        conn.rollback()
        with conn.begin():
            conn.execute(text(f"SET LOCAL {MAINTENANCE_SETTING} = 'on'"))
            conn.execute(text(f"TRUNCATE {table} CASCADE"))
        with pytest.raises(DBAPIError, match="TRUNCATE refused"):  # SET LOCAL ended with it
            conn.execute(text("TRUNCATE chain_heads"))


# --- the service as the application role -------------------------------------------------------


def test_the_service_works_normally_as_the_app_role(role_app, clock):
    clock.set("2026-03-10T20:00:00+08:00")
    factory = Factory(role_app, role_app.test_client(), clock)
    coordinator = factory.staff()
    staff = factory.as_(coordinator)
    enrol = {
        "site": "BJ302",
        "arm": "msc",
        "enrolled_on": "2026-03-01",
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
    }
    enrolled = staff.post("/api/v1/participants", json=enrol)
    assert enrolled.status_code == 201, enrolled.json
    pid, code = enrolled.json["id"], enrolled.json["activation_code"]
    pair = factory.client.post("/api/v1/auth/participants/activate", json={"activation_code": code})
    assert pair.status_code == 200, pair.json
    phone = factory.as_(None)
    phone.token = pair.json["access_token"]
    device = {"token": "fcm-role-test", "platform": "ios", "app_version": "2.1"}
    assert phone.post("/api/v1/me/devices", json=device).status_code == 201
    entry = {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": "2026-03-10",
        "abdominal_distension": 1,
        "decreased_appetite": 0,
        "debilitation": 2,
        "leg_edema": 0,
        "discomfort_grade": 3,
        "note": "tired",
        "recorded_at": "2026-03-10T19:58:00+08:00",
    }
    submitted = phone.post("/api/v1/me/diary-entries", json=entry)
    assert submitted.status_code == 201, submitted.json
    assert phone.post("/api/v1/me/diary-entries", json=entry).status_code == 200  # replay
    url = f"/api/v1/participants/{pid}/diary-entries/{submitted.json['id']}"
    etag = staff.get(url).headers["ETag"]
    amended = staff.patch(
        url, json={"leg_edema": 2, "reason": "data query"}, headers={"If-Match": etag}
    )
    assert amended.status_code == 200, amended.json
    assert amended.json["version"] == 2
    alerts = staff.get("/api/v1/alerts?status=open")
    assert [a["kind"] for a in alerts.json] == ["symptom"]
    ack = {"note": "Called: resting, stable.", "decision": "not_adverse_event"}
    acked = staff.post(f"/api/v1/alerts/{alerts.json[0]['id']}/acknowledge", json=ack)
    assert acked.status_code == 200, acked.json
    refreshed = factory.client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair.json["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.json

    runner = role_app.test_cli_runner()
    worker = runner.invoke(args=["notifications", "run", "--once"])
    assert worker.exit_code == 0, worker.output
    with role_app.app_context():  # one flush extending two chains: lock_chain_heads()
        for subject in (pid, None):
            record_audit(("system", None), "role.check", "participant", pid, participant_id=subject)
        db.session.commit()
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "all links verified" in verified.output
    assert factory.scalar(select(func.count()).select_from(DiaryEntryVersion)) == 2
    heads = runner.invoke(args=["audit", "heads"])
    assert heads.exit_code == 0 and f'"participant:{pid}"' in heads.output


# --- the command itself --------------------------------------------------------------------------


def test_grant_app_role_is_idempotent(app, app_role):
    again = _grant(app, app_role, password=None)
    assert again.exit_code == 0, again.output
    assert f"Role {app_role} updated (LOGIN)" in again.output
    assert "SELECT, INSERT: audit_events, diary_entry_versions" in again.output
    assert "SELECT: alembic_version, chain_heads" in again.output


def test_a_new_role_without_a_password_cannot_log_in(app, database_url):
    role = f"diary_nologin_{uuid.uuid4().hex[:10]}"
    try:
        made = _grant(app, role, password=None)
        assert made.exit_code == 0, made.output
        assert f"Role {role} created (NOLOGIN)" in made.output
        with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
            psycopg.connect(
                make_url(_as_role(database_url, role))
                .set(drivername="postgresql")
                .render_as_string(hide_password=False)
            )
    finally:
        _drop_role(database_url, role)


def test_the_owner_is_refused_as_the_app_role(app, database_url):
    owner = make_url(database_url).username
    refused = _grant(app, owner)
    assert refused.exit_code == 1
    assert "owns nothing" in refused.output


def test_migrations_run_as_the_owner_named_by_migration_database_url(database_url):
    """The production set-up from the README on a scratch database: owner, app role, service."""
    assert PG_URL is not None
    suffix = uuid.uuid4().hex[:10]
    owner, role, name = f"diary_owner_{suffix}", f"diary_svc_{suffix}", f"diary_prod_{suffix}"
    base = make_url(PG_URL).set(drivername="postgresql+psycopg")
    with _admin(PG_URL) as conn:
        conn.execute(f"CREATE ROLE \"{owner}\" LOGIN PASSWORD 'owner'")
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{ROLE_PASSWORD}'")
        conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    owner_url = base.set(username=owner, password="owner", database=name)
    service_url = base.set(username=role, password=ROLE_PASSWORD, database=name)
    try:
        config = {
            "APP_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": service_url.render_as_string(hide_password=False),
            "MIGRATION_DATABASE_URL": owner_url.render_as_string(hide_password=False),
        }
        migrator = create_app({**config, "AUTO_MIGRATE": True})  # = `db upgrade`
        granted = _grant(migrator, role, password=None)  # the operator made the login role
        assert granted.exit_code == 0, granted.output
        assert f"Role {role} updated (LOGIN); tables owned by {owner}" in granted.output
        service = create_app({**config, "MIGRATION_DATABASE_URL": None, "AUTO_MIGRATE": False})
        assert service.test_client().get("/readyz").status_code == 200
        with service.app_context():
            sites = db.session.execute(text("SELECT count(*) FROM sites")).scalar_one()
            db.engine.dispose()
        assert sites == 6  # made by the service's start, as the app role
        with _admin(owner_url.render_as_string(hide_password=False)) as conn:
            owners = conn.execute(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        assert owners == [(owner,)]
    finally:
        with _admin(PG_URL) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')
            conn.execute(f'DROP ROLE IF EXISTS "{owner}"')
