"""A submit's statements, and the ids PostgreSQL's one-statement submit reserves first."""

from __future__ import annotations

import os
import re
import uuid
from datetime import date

import pytest
from sqlalchemy import func, select, text

from api.chain import verify_chains
from api.extensions import db
from api.models import AuditEvent, DiaryEntry, DiaryEntryVersion
from api.services import entry_ids
from tests.helpers import statements_sent
from tests.test_diary_entries import MINE, body


@pytest.fixture
def phone(factory, clock):
    clock.set("2026-03-10T20:00:00+08:00")
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    return factory.as_(participant)


def writes(sent: list[str]) -> list[str]:
    """The statements that write (an INSERT, or a WITH holding one), whitespace folded."""
    return [" ".join(s.split()) for s in sent if "INSERT INTO" in s.upper()]


def counts(factory) -> tuple[int, int, int]:
    return tuple(  # type: ignore[return-value]
        factory.scalar(select(func.count()).select_from(model))
        for model in (DiaryEntry, DiaryEntryVersion, AuditEvent)
    )


def verified(app) -> bool:  # type: ignore[no-untyped-def]
    with app.app_context(), db.engine.connect() as connection:
        return verify_chains(connection).ok


def test_a_submit_writes_entry_version_and_audit_row_in_as_few_statements_as_it_can(
    app, phone, factory, backend
):
    """PostgreSQL: one statement for all three rows (one round trip); SQLite, where a
    statement costs no round trip, the entry and then its linked history."""
    before = counts(factory)
    with statements_sent(app) as sent:
        assert phone.post(MINE, json=body("2026-03-10")).status_code == 201
    assert counts(factory) == tuple(n + 1 for n in before)
    written = writes(sent)
    if backend == "postgresql":
        assert len(written) == 1, written
        assert written[0].startswith("WITH entry AS (INSERT INTO diary_entries "), written[0]
        assert "INSERT INTO audit_events" in written[0]
        assert "INSERT INTO diary_entry_versions" in written[0]
    else:
        assert [s.split(" (")[0] for s in written] == [
            "INSERT INTO diary_entries",
            "INSERT INTO audit_events",
            "INSERT INTO diary_entry_versions",
        ], written
    assert verified(app)


def test_a_kept_out_entry_takes_its_history_with_it(app, phone, factory):
    """A replay and a second entry for the day write no version and no audit row."""
    sent = body("2026-03-10")
    assert phone.post(MINE, json=sent).status_code == 201
    after_first = counts(factory)
    assert phone.post(MINE, json=sent).status_code == 200
    assert phone.post(MINE, json={**sent, "client_entry_id": str(uuid.uuid4())}).status_code == 409
    assert counts(factory) == after_first
    assert verified(app)


def test_ids_are_reserved_a_block_at_a_time(app, phone, backend):
    with statements_sent(app) as sent:
        ids = [phone.post(MINE, json=body(day)).json["id"] for day in ("2026-03-09", "2026-03-10")]
    reserving = [s for s in sent if "nextval" in s]
    assert len(set(ids)) == 2
    # PostgreSQL: one block serves both; SQLite: the INSERT picks the id.
    assert len(reserving) == (1 if backend == "postgresql" else 0)
    assert verified(app)


@pytest.mark.postgres_only
def test_a_reserved_id_someone_else_took_falls_back_to_the_databases_pick(app, phone, factory):
    """The sequence set back under a running process (a restore, a reset): the reserved
    id is taken, so the submit drops its block and the INSERT picks the id. Nothing is
    lost or doubled, and the chain stays whole."""
    first = phone.post(MINE, json=body("2026-03-09")).json["id"]
    taken = first + 1  # the next id of this process's block (one process, one writer)
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO diary_entries SELECT :taken, participant_id, DATE '2026-03-01',"
                " gen_random_uuid(), abdominal_distension, decreased_appetite, debilitation,"
                " leg_edema, discomfort_grade, note, recorded_at, recorded_offset_minutes,"
                " timezone, received_at, late, source, created_by_staff_id, version, updated_at"
                " FROM diary_entries WHERE id = :first"
            ),
            {"taken": taken, "first": first},
        )
        db.session.execute(
            text("SELECT setval(pg_get_serial_sequence('diary_entries', 'id'), :v)"),
            {"v": taken},
        )
        db.session.commit()
    with statements_sent(app) as sent:
        response = phone.post(MINE, json=body("2026-03-10"))
    assert response.status_code == 201, response.json
    assert response.json["id"] == taken + 1  # the sequence's next value, not a new block
    assert not [s for s in sent if "nextval" in s], sent
    again = phone.post(MINE, json=body("2026-03-08"))  # a new block, from the sequence
    assert again.status_code == 201 and again.json["id"] > response.json["id"]
    assert counts(factory)[:2] == (4, 3)  # the row put in by hand has no version
    assert verified(app)


def test_a_forked_child_never_hands_out_its_parents_ids(app, phone, backend):
    """gunicorn forks its workers: a block reserved before the fork would be used twice."""
    assert phone.post(MINE, json=body("2026-03-10")).status_code == 201
    with app.app_context():
        held = list(entry_ids._reserved.get(db.engine, []))
    assert held if backend == "postgresql" else not held
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read)
        os.write(write, str(len(entry_ids._reserved)).encode())
        os._exit(0)
    os.close(write)
    reported = os.read(read, 16).decode()
    os.waitpid(child, 0)
    os.close(read)
    assert reported == "0"


@pytest.mark.postgres_only
def test_the_one_statement_stays_within_what_psycopg_caches(app, phone):
    """psycopg converts a statement's text anew on every call once it passes 4 kB or 50
    parameters; the one-statement submit would then cost more than the two it replaces."""
    from psycopg import _queries

    with statements_sent(app) as sent:
        assert phone.post(MINE, json=body("2026-03-10")).status_code == 201
    (statement,) = [s for s in sent if "INSERT INTO diary_entries" in s]
    parameters = set(re.findall(r"%\((\w+)\)s", statement))
    assert len(statement.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH
    assert 0 < len(parameters) <= _queries.MAX_CACHED_STATEMENT_PARAMS
