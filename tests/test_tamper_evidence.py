"""Tamper evidence: audit rows and diary versions are append-only hash chains.

Rows are chained as they are written (one chain per participant, audit rows and diary
versions interleaved; one per entity type otherwise); the ORM refuses changes and
deletes, PostgreSQL refuses them in the database too; `audit verify` finds the first
broken link after a row is changed or removed behind the application's back.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from api.audit import record_audit
from api.chain import (
    CHAIN_FIELDS,
    GENESIS_HASH,
    HASHED_FIELDS,
    AppendOnlyError,
    VerifyReport,
    row_hash,
    verify_chains,
)
from api.clock import utcnow
from api.extensions import db
from api.models import AuditEvent, ChainHead, DiaryEntry, DiaryEntryVersion, Participant
from api.services.staff import add_staff
from tests.test_diary_entries import body

CHAINED = (AuditEvent, DiaryEntryVersion)


# --- helpers ---------------------------------------------------------------------------------


def verify(app: Flask) -> VerifyReport:
    with app.app_context(), db.engine.connect() as connection:
        return verify_chains(connection)


def chain_rows(app: Flask, key: str) -> list[tuple[str, int, int, str, str]]:
    """(table, id, seq, prev_hash, row_hash) of one chain, in chain order."""
    rows = []
    with app.app_context():
        for model in CHAINED:
            for obj in db.session.scalars(select(model).where(model.chain_key == key)):
                rows.append((model.__tablename__, obj.id, obj.seq, obj.prev_hash, obj.row_hash))
    return sorted(rows, key=lambda r: r[2])


def audit_rows(app: Flask, participant_id: int, n: int) -> None:
    """Write `n` audit rows for a participant, one transaction each."""
    with app.app_context():
        for i in range(n):
            record_audit(
                ("system", None),
                "test.note",
                "participant",
                participant_id,
                participant_id=participant_id,
                after={"n": i, "at": utcnow(), "nested": {"b": [1, 2.5, None], "a": "ü"}},
            )
            db.session.commit()


def diary_entry(app: Flask, participant: Participant, day: date, versions: int = 1) -> int:
    """An entry with `versions` versions, made with the ORM as the diary code makes them."""
    with app.app_context():
        now = utcnow()
        entry = DiaryEntry(
            participant_id=participant.id,
            diary_date=day,
            client_entry_id=uuid.uuid4(),
            abdominal_distension=1,
            decreased_appetite=0,
            debilitation=2,
            leg_edema=0,
            discomfort_grade=1,
            note="tired, 有点累",
            recorded_at=datetime.fromisoformat(f"{day.isoformat()}T21:30:00.123456+08:00"),
            recorded_offset_minutes=480,
            timezone=participant.timezone,
            received_at=now,
            late=False,
            source="participant",
            version=1,
            updated_at=now,
        )
        for number in range(1, versions + 1):
            entry.version = number
            DiaryEntryVersion(
                entry=entry,
                participant_id=participant.id,
                version=number,
                diary_date=day,
                abdominal_distension=1,
                decreased_appetite=0,
                debilitation=2,
                leg_edema=number - 1,
                discomfort_grade=1,
                note="tired, 有点累",
                recorded_at=entry.recorded_at,
                recorded_offset_minutes=480,
                source="participant",
                actor_type="participant",
                actor_id=participant.id,
                at=now + timedelta(minutes=number),
                reason=None if number == 1 else "mis-tap",
            )
        db.session.add(entry)
        db.session.commit()
        return entry.id


def _sqlite_path(app: Flask) -> str:
    return app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")


def behind_the_back(app: Flask, backend: str, sql: str, **params: Any) -> None:
    """Run SQL as an intruder with database access would, past the app and its triggers."""
    if backend == "sqlite":
        with sqlite3.connect(_sqlite_path(app)) as conn:
            conn.execute(sql, params)
        return
    with app.app_context(), db.engine.connect() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # triggers off
        conn.execute(text(sql), params)
        conn.execute(text("SET session_replication_role = origin"))
        conn.commit()


def only_break(report: VerifyReport):  # type: ignore[no-untyped-def]
    assert len(report.breaks) == 1, report.breaks
    return report.breaks[0]


# --- chains form as rows are written ---------------------------------------------------------


def test_every_column_is_hashed_or_a_chain_field(app):
    for model in CHAINED:
        columns = {c.name for c in model.__table__.columns}
        hashed = set(HASHED_FIELDS[model.__tablename__])
        assert columns == hashed | set(CHAIN_FIELDS), model.__tablename__


def test_rows_form_one_chain_per_participant(app, factory):
    coordinator = factory.staff()
    one = factory.participant()
    two = factory.participant()
    factory.as_(one).patch("/api/v1/me", json={"locale": "en"})
    factory.as_(coordinator).patch(f"/api/v1/participants/{two.id}", json={"locale": "en"})
    diary_entry(app, one, date(2026, 1, 2), versions=2)
    audit_rows(app, one.id, 2)

    rows = chain_rows(app, f"participant:{one.id}")
    tables = [r[0] for r in rows]
    assert tables.count("audit_events") == 4  # enrolled, updated, 2 notes
    assert tables.count("diary_entry_versions") == 2
    assert [r[2] for r in rows] == list(range(1, 7))
    assert rows[0][3] == GENESIS_HASH
    for previous, current in itertools.pairwise(rows):
        assert current[3] == previous[4]  # prev_hash is the previous row's hash
    assert len({r[4] for r in rows}) == 6
    head = factory.scalar(select(ChainHead).where(ChainHead.chain_key == f"participant:{one.id}"))
    assert (head.seq, head.head_hash) == (6, rows[-1][4])
    assert [r[2] for r in chain_rows(app, f"participant:{two.id}")] == [1, 2]
    report = verify(app)
    assert report.ok, report.breaks
    assert report.chains == 2
    assert report.rows == {"audit_events": 6, "diary_entry_versions": 2}


def test_rows_without_a_participant_chain_by_entity_type(app):
    with app.app_context():
        add_staff("a@example.org", "admin", [], "a long enough password")
        add_staff("b@example.org", "monitor", [], "a long enough password")
        db.session.commit()
    rows = chain_rows(app, "type:staff")
    assert [r[2] for r in rows] == [1, 2]
    assert verify(app).ok


def test_the_hash_covers_content_chain_and_place(app, factory):
    participant = factory.participant()
    audit_rows(app, participant.id, 1)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        content = {n: getattr(event, n) for n in HASHED_FIELDS["audit_events"]}
        table = AuditEvent.__table__
        stored = event.row_hash
        assert row_hash(table, event.chain_key, event.seq, event.prev_hash, content) == stored
        assert row_hash(table, event.chain_key, event.seq + 1, event.prev_hash, content) != stored
        assert row_hash(table, "participant:0", event.seq, event.prev_hash, content) != stored
        assert row_hash(table, event.chain_key, event.seq, GENESIS_HASH, content) != stored
        changed = {**content, "reason": "something else"}
        assert row_hash(table, event.chain_key, event.seq, event.prev_hash, changed) != stored


def test_diary_submitted_through_the_api_joins_the_participants_chain(app, factory, clock):
    clock.set("2026-03-10T20:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    entry = body("2026-03-10")
    assert phone.post("/api/v1/me/diary-entries", json=entry).status_code == 201
    # A replay and a conflicting entry for the same day roll back a savepoint each.
    assert phone.post("/api/v1/me/diary-entries", json=entry).status_code == 200
    other = {**entry, "client_entry_id": str(uuid.uuid4())}
    assert phone.post("/api/v1/me/diary-entries", json=other).status_code == 409
    yesterday = {**entry, "client_entry_id": str(uuid.uuid4()), "diary_date": "2026-03-09"}
    assert phone.post("/api/v1/me/diary-entries", json=yesterday).status_code == 201
    rows = chain_rows(app, f"participant:{participant.id}")
    assert [r[2] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[0] for r in rows].count("diary_entry_versions") == 2
    report = verify(app)
    assert report.ok, report.breaks


def test_a_synced_queue_joins_the_participants_chain_in_one_unbroken_run(app, factory, clock):
    """A queue's versions and audit rows (one executemany per table) link like single ones."""
    clock.set("2026-03-10T20:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    phone = factory.as_(participant)
    first = phone.post("/api/v1/me/diary-entries", json=body("2026-03-10"))
    assert first.status_code == 201
    queue = [body(f"2026-03-0{day}") for day in (9, 8)]  # within the back-fill window
    answer = phone.post("/api/v1/me/diary-entries/sync", json={"entries": queue})
    assert [r["status"] for r in answer.json["results"]] == ["created"] * 2
    rows = chain_rows(app, f"participant:{participant.id}")
    assert [r[2] for r in rows] == list(range(1, len(rows) + 1))
    tables = [r[0] for r in rows]
    assert tables.count("diary_entry_versions") == 3
    assert tables.count("audit_events") >= 3
    report = verify(app)
    assert report.ok, report.breaks


def test_a_rolled_back_savepoint_leaves_no_gap(app, factory):
    participant = factory.participant()
    with app.app_context():
        record_audit(("system", None), "a", "participant", 1, participant_id=participant.id)
        db.session.flush()
        nested = db.session.begin_nested()
        record_audit(("system", None), "b", "participant", 1, participant_id=participant.id)
        db.session.flush()
        nested.rollback()
        record_audit(("system", None), "c", "participant", 1, participant_id=participant.id)
        db.session.commit()
    with app.app_context():
        record_audit(("system", None), "d", "participant", 1, participant_id=participant.id)
        db.session.rollback()  # a whole transaction rolled back after a flushless add
        record_audit(("system", None), "e", "participant", 1, participant_id=participant.id)
        db.session.commit()
    actions = factory.scalars(
        select(AuditEvent.action)
        .where(AuditEvent.participant_id == participant.id)
        .order_by(AuditEvent.seq)
    )
    assert actions == ["participant.enrolled", "a", "c", "e"]
    assert verify(app).ok


# --- append-only ------------------------------------------------------------------------------


def test_the_orm_refuses_to_change_or_delete_audit_rows(app, factory):
    participant = factory.participant()
    with app.app_context():
        event = db.session.scalars(select(AuditEvent)).first()
        event.reason = "rewritten"
        with pytest.raises(AppendOnlyError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.scalars(select(AuditEvent)).first())
        with pytest.raises(AppendOnlyError):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(AppendOnlyError):
            db.session.execute(update(AuditEvent).values(reason="bulk"))
        with pytest.raises(AppendOnlyError):
            db.session.execute(delete(AuditEvent).where(AuditEvent.id > 0))
        db.session.rollback()
        # Loading and flushing without a change is fine.
        db.session.scalars(select(AuditEvent)).all()
        db.session.commit()
    reasons = factory.scalars(
        select(AuditEvent.reason).where(AuditEvent.participant_id == participant.id)
    )
    assert reasons == [None]
    assert verify(app).ok


def test_the_orm_refuses_to_change_or_delete_diary_versions(app, factory):
    participant = factory.participant()
    diary_entry(app, participant, date(2026, 1, 2), versions=2)
    with app.app_context():
        version = db.session.scalars(select(DiaryEntryVersion)).first()
        version.discomfort_grade = 4
        with pytest.raises(AppendOnlyError):
            db.session.commit()
        db.session.rollback()
        db.session.delete(db.session.scalars(select(DiaryEntryVersion)).first())
        with pytest.raises(AppendOnlyError):
            db.session.commit()
        db.session.rollback()
        with pytest.raises(AppendOnlyError):
            db.session.execute(update(DiaryEntryVersion).values(note="bulk"))
    assert factory.scalar(select(func.max(DiaryEntryVersion.discomfort_grade))) == 1
    assert factory.scalar(select(func.count()).select_from(DiaryEntryVersion)) == 2


@pytest.mark.postgres_only
def test_postgresql_refuses_raw_updates_and_deletes(app, factory):
    participant = factory.participant()
    diary_entry(app, participant, date(2026, 1, 2))
    statements = [
        "UPDATE audit_events SET reason = 'rewritten'",
        "DELETE FROM audit_events",
        "UPDATE diary_entry_versions SET discomfort_grade = 4",
        "DELETE FROM diary_entry_versions",
    ]
    with app.app_context():
        for sql in statements:
            with db.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(sql))
    assert factory.scalar(select(func.count()).select_from(DiaryEntryVersion)) == 1
    assert factory.scalar(select(AuditEvent.reason)) is None
    assert verify(app).ok


# --- verification finds what was done behind the app's back -----------------------------------


def _ids_by_seq(app: Flask, key: str) -> dict[int, tuple[str, int, str]]:
    return {seq: (table, row_id, digest) for table, row_id, seq, _, digest in chain_rows(app, key)}


def test_a_changed_row_is_reported_as_the_first_broken_link(app, factory, backend):
    victim = factory.participant()
    bystander = factory.participant()
    audit_rows(app, victim.id, 4)  # seq 2..5 after the enrolment row
    audit_rows(app, bystander.id, 2)
    key = f"participant:{victim.id}"
    rows = _ids_by_seq(app, key)
    assert verify(app).ok

    behind_the_back(
        app, backend, "UPDATE audit_events SET reason = 'x' WHERE id = :id", id=rows[3][1]
    )
    behind_the_back(
        app, backend, "UPDATE audit_events SET action = 'y' WHERE id = :id", id=rows[4][1]
    )
    with app.app_context():
        tampered = db.session.get(AuditEvent, rows[3][1])
        content = {n: getattr(tampered, n) for n in HASHED_FIELDS["audit_events"]}
        expected = row_hash(AuditEvent.__table__, key, 3, rows[2][2], content)
    broken = only_break(verify(app))
    assert (broken.chain_key, broken.table, broken.seq, broken.row_id) == (
        key,
        "audit_events",
        3,
        rows[3][1],
    )
    assert broken.problem == "row hash differs"
    assert (broken.expected, broken.stored) == (expected, rows[3][2])


def test_a_changed_diary_version_is_reported(app, factory, backend):
    participant = factory.participant()
    diary_entry(app, participant, date(2026, 1, 2), versions=3)
    key = f"participant:{participant.id}"
    rows = _ids_by_seq(app, key)
    assert rows[3][0] == "diary_entry_versions"
    behind_the_back(
        app,
        backend,
        "UPDATE diary_entry_versions SET discomfort_grade = 0 WHERE id = :id",
        id=rows[3][1],
    )
    broken = only_break(verify(app))
    assert (broken.table, broken.seq, broken.row_id, broken.stored) == (
        "diary_entry_versions",
        3,
        rows[3][1],
        rows[3][2],
    )


def test_a_row_rehashed_by_the_intruder_breaks_the_next_link(app, factory, backend):
    participant = factory.participant()
    audit_rows(app, participant.id, 3)
    key = f"participant:{participant.id}"
    rows = _ids_by_seq(app, key)
    with app.app_context():
        event = db.session.get(AuditEvent, rows[2][1])
        content = {n: getattr(event, n) for n in HASHED_FIELDS["audit_events"]}
        content["reason"] = "x"
        forged = row_hash(AuditEvent.__table__, key, 2, event.prev_hash, content)
    behind_the_back(
        app,
        backend,
        "UPDATE audit_events SET reason = 'x', row_hash = :h WHERE id = :id",
        id=rows[2][1],
        h=forged,
    )
    broken = only_break(verify(app))
    assert (broken.seq, broken.row_id, broken.problem) == (3, rows[3][1], "previous hash differs")
    assert (broken.expected, broken.stored) == (forged, rows[2][2])


def test_a_deleted_middle_row_is_reported(app, factory, backend):
    participant = factory.participant()
    audit_rows(app, participant.id, 4)
    key = f"participant:{participant.id}"
    rows = _ids_by_seq(app, key)
    behind_the_back(app, backend, "DELETE FROM audit_events WHERE id = :id", id=rows[3][1])
    broken = only_break(verify(app))
    assert (broken.chain_key, broken.table, broken.seq, broken.row_id) == (
        key,
        "audit_events",
        4,
        rows[4][1],
    )
    assert "rows missing" in broken.problem
    assert (broken.expected, broken.stored) == ("3", "4")


def test_a_deleted_last_row_is_reported_by_the_head(app, factory, backend):
    participant = factory.participant()
    audit_rows(app, participant.id, 2)
    key = f"participant:{participant.id}"
    rows = _ids_by_seq(app, key)
    behind_the_back(app, backend, "DELETE FROM audit_events WHERE id = :id", id=rows[3][1])
    broken = only_break(verify(app))
    assert (broken.chain_key, broken.table, broken.seq) == (key, "chain_heads", 3)
    assert "rows missing" in broken.problem


def test_a_row_slipped_in_without_a_link_is_reported(app, factory, backend):
    participant = factory.participant()
    behind_the_back(
        app,
        backend,
        "INSERT INTO audit_events (at, actor_type, action, entity_type, entity_id, "
        "participant_id) VALUES ('2026-01-01 00:00:00', 'system', 'forged', 'participant', "
        ":pid, :pid)",
        pid=participant.id,
    )
    broken = only_break(verify(app))
    assert broken.table == "audit_events" and "no chain link" in broken.problem


def test_cli_reports_ok_then_the_broken_link(app, factory, backend):
    participant = factory.participant()
    audit_rows(app, participant.id, 2)
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    assert f"OK     participant:{participant.id}: 3 rows" in clean.output
    assert "1 chains, 3 audit_events, 0 diary_entry_versions: all links verified." in clean.output

    rows = _ids_by_seq(app, f"participant:{participant.id}")
    behind_the_back(
        app, backend, "UPDATE audit_events SET reason = 'x' WHERE id = :id", id=rows[2][1]
    )
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert (
        f"BROKEN participant:{participant.id}: audit_events seq 2 (row id {rows[2][1]}): "
        f"row hash differs; expected " in broken.output
    )
    assert f"stored {rows[2][2]}" in broken.output
    assert "1 broken" in broken.output


# --- concurrency -----------------------------------------------------------------------------


def _run_threads(n: int, target) -> list[BaseException]:  # type: ignore[no-untyped-def]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            target(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_concurrent_writers_of_several_participants_keep_valid_chains(app, factory):
    participants = [factory.participant() for _ in range(4)]
    tokens = [factory.token(p) for p in participants]

    def write(i: int) -> None:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {tokens[i % 4]}"}
        for n in range(5):
            locale = "en" if n % 2 == 0 else "zh-CN"
            response = client.patch("/api/v1/me", json={"locale": locale}, headers=headers)
            assert response.status_code == 200, response.json

    assert _run_threads(4, write) == []
    report = verify(app)
    assert report.ok, report.breaks
    assert report.chains == 4
    assert report.rows["audit_events"] == 4 * (1 + 5)


def test_concurrent_writers_of_one_participant_keep_a_valid_chain(app, factory):
    participant = factory.participant()

    def write(_i: int) -> None:
        audit_rows(app, participant.id, 5)

    assert _run_threads(6, write) == []
    rows = chain_rows(app, f"participant:{participant.id}")
    assert [r[2] for r in rows] == list(range(1, 32))
    assert verify(app).ok


def test_concurrent_first_rows_of_a_new_chain_share_one_head(app):
    def write(i: int) -> None:
        with app.app_context():
            record_audit(("system", None), "race", "race_test", i)
            db.session.commit()

    assert _run_threads(8, write) == []
    rows = chain_rows(app, "type:race_test")
    assert [r[2] for r in rows] == list(range(1, 9))
    assert verify(app).ok


def test_transactions_extending_the_same_chains_in_opposite_orders_do_not_deadlock(app, factory):
    """A flush that extends several chains locks their heads in one sorted order."""
    one, two = factory.participant(), factory.participant()

    def write(i: int) -> None:
        order = (one.id, two.id) if i % 2 == 0 else (two.id, one.id)
        for n in range(5):
            with app.app_context():
                for pid in order:
                    record_audit(
                        ("system", None), f"batch.{n}", "participant", pid, participant_id=pid
                    )
                db.session.commit()

    assert _run_threads(6, write) == []
    report = verify(app)
    assert report.ok, report.breaks
    assert report.rows["audit_events"] == 2 + 6 * 5 * 2


def test_chain_listeners_are_bound_to_the_apps_session_not_to_sqlalchemys_class(app):
    """A session made outside the app (a script, another library) is left alone; the
    app's own session links every row."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from api import chain

    for name, listener in (
        ("before_flush", chain._before_flush),
        ("after_flush", chain._after_flush),
    ):
        assert event.contains(db.session, name, listener)
        assert not event.contains(Session, name, listener)
