"""The database refuses out-of-range values itself (migration 0008), on both databases.

Marshmallow keeps bad values out of the API; these CHECK constraints keep them out of
the tables for any writer that skips it (a script, a console, another service). Each
constraint is tried with raw SQL: a copy of a valid row with one value out of range.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import CheckConstraint, func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from api.clock import utcnow
from api.extensions import db
from api.models import Base, RefreshToken, Reminder, ReminderDelivery

NO_CHAIN = {"chain_key": None}  # on PostgreSQL the link trigger numbers chained rows itself
SCORES = (
    "abdominal_distension",
    "decreased_appetite",
    "debilitation",
    "leg_edema",
    "discomfort_grade",
)


def _entry_cases(table: str) -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for score in SCORES:
        cases += [(table, score, {score: 5}), (table, score, {score: -1})]
    return [
        *cases,
        (table, "source", {"source": "import"}),
        (table, "recorded_offset_minutes", {"recorded_offset_minutes": 1440}),
        (table, "recorded_offset_minutes", {"recorded_offset_minutes": -1440}),
        (table, "version", {"version": 0}),
    ]


# (table, constraint name without the ck_<table>_ prefix, the values that break it)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("sites", "next_participant_number", {"next_participant_number": 0}),
    ("staff_users", "role", {"role": "superuser"}),
    ("staff_users", "role", {"role": "Admin"}),
    ("staff_users", "auth_epoch", {"auth_epoch": -1}),
    ("staff_users", "locale", {"locale": "fr"}),
    ("refresh_tokens", "subject_type", {"subject_type": "robot"}),
    ("participants", "arm", {"arm": "placebo"}),
    ("participants", "status", {"status": "lost"}),
    ("participants", "locale", {"locale": "fr"}),
    ("participants", "reminder_time", {"reminder_time": "24:00"}),
    ("participants", "reminder_time", {"reminder_time": "12:60"}),
    ("participants", "reminder_time", {"reminder_time": "9:00"}),
    ("participants", "reminder_time", {"reminder_time": "1a:00"}),
    ("participants", "diary_reminder_time", {"diary_reminder_time": "20-00"}),
    ("participants", "diary_reminder_time", {"diary_reminder_time": "20:5x"}),
    ("participants", "auth_epoch", {"auth_epoch": -1}),
    ("participants", "version", {"version": 0}),
    ("audit_events", "actor_type", {"actor_type": "robot"}),
    ("audit_events", "seq", {**NO_CHAIN, "seq": 0}),
    ("chain_heads", "seq", {"seq": -1}),
    ("chain_heads", "head_hash", {"head_hash": "abc"}),
    ("devices", "platform", {"platform": "windows"}),
    ("devices", "locale", {"locale": "de"}),
    *_entry_cases("diary_entries"),
    *_entry_cases("diary_entry_versions"),
    ("diary_entry_versions", "actor_type", {"actor_type": "system"}),
    ("diary_entry_versions", "seq", {**NO_CHAIN, "seq": 0}),
    ("schedule_events", "kind", {"kind": "surgery"}),
    ("schedule_events", "status", {"status": "done"}),
    ("schedule_events", "number", {"number": 0}),
    ("schedule_events", "month", {"month": -1}),
    ("schedule_events", "version", {"version": 0}),
    ("schedule_events", "window", {"window_start": date(2100, 1, 1)}),
    ("adverse_events", "grade", {"grade": 5}),
    ("adverse_events", "grade", {"grade": -1}),
    ("adverse_events", "relation_to_infusion", {"relation_to_infusion": "maybe"}),
    ("adverse_events", "outcome", {"outcome": "better"}),
    ("adverse_events", "version", {"version": 0}),
    ("reminders", "kind", {"kind": "sms"}),
    ("reminders", "status", {"status": "queued"}),
    ("reminders", "attempts", {"attempts": -1}),
    ("reminders", "offset_days", {"offset_days": -1}),
    ("alerts", "kind", {"kind": "other"}),
    ("alerts", "status", {"status": "closed"}),
    ("alerts", "decision", {"decision": "ignored"}),
    ("reminder_deliveries", "attempt", {"attempt": 0}),
]


def _case_id(case: tuple[str, str, dict[str, Any]]) -> str:
    table, name, values = case
    shown = ",".join(f"{v}" for k, v in values.items() if k != "chain_key")
    return f"{table}.{name}={shown}"


@pytest.fixture
def one_of_everything(app: Flask, factory, clock) -> None:
    """A valid row in every table with a CHECK constraint, made the way the service makes them."""
    clock.set("2026-03-10T20:00:00+08:00")
    coordinator = factory.staff()
    participant = factory.participant(enrolled_on=date(2026, 3, 1))
    staff_client, phone = factory.as_(coordinator), factory.as_(participant)
    device = {"token": "fcm-token-1", "platform": "android", "app_version": "1.0"}
    assert phone.post("/api/v1/me/devices", json=device).status_code == 201
    entry = {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": "2026-03-10",
        "abdominal_distension": 1,
        "decreased_appetite": 0,
        "debilitation": 2,
        "leg_edema": 0,
        "discomfort_grade": 3,  # raises a symptom alert
        "note": "ok",
        "recorded_at": "2026-03-10T19:58:00+08:00",
    }
    assert phone.post("/api/v1/me/diary-entries", json=entry).status_code == 201
    adverse = {
        "term": "Ascites",
        "onset_date": "2026-03-09",
        "grade": 2,
        "relation_to_infusion": "unlikely",
        "outcome": "recovering",
    }
    url = f"/api/v1/participants/{participant.id}/adverse-events"
    assert staff_client.post(url, json=adverse).status_code == 201
    with app.app_context():
        now = utcnow()
        reminder = Reminder(
            participant_id=participant.id,
            kind="diary",
            target="diary:2026-03-11",
            target_date=date(2026, 3, 11),
            offset_days=0,
            due_at=now + timedelta(days=1),
            expires_at=now + timedelta(days=1, hours=4),
            status="sent",
            attempts=1,
            created_at=now,
            updated_at=now,
        )
        db.session.add(reminder)
        db.session.add(
            RefreshToken(
                token_hash="0" * 64,
                family_id=str(uuid.uuid4()),
                subject_type="staff",
                subject_id=coordinator.id,
                issued_at=now,
                expires_at=now + timedelta(days=30),
                family_started_at=now,
            )
        )
        db.session.flush()
        device_id = db.session.execute(text("SELECT min(id) FROM devices")).scalar_one()
        db.session.add(
            ReminderDelivery(reminder_id=reminder.id, device_id=device_id, attempt=1, at=now)
        )
        db.session.commit()
        for table in {case[0] for case in CASES}:
            count = db.session.scalar(select(func.count()).select_from(Base.metadata.tables[table]))
            assert count, f"no {table} row to copy"


def _copy_with(table_name: str, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """INSERT … SELECT a copy of the table's first row, with `values` in place of its own."""
    table = Base.metadata.tables[table_name]
    key = next(iter(table.primary_key.columns))
    columns = [c.name for c in table.columns if c is not table.autoincrement_column]
    picked = [f":{c}" if c in values else c for c in columns]
    sql = (
        f"INSERT INTO {table_name} ({', '.join(columns)}) SELECT {', '.join(picked)} "
        f"FROM {table_name} WHERE {key.name} = (SELECT min({key.name}) FROM {table_name})"
    )
    return sql, values


def _check_names(table_name: str) -> set[str]:
    table = Base.metadata.tables[table_name]
    return {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_an_out_of_range_value_is_refused_by_the_database(app, one_of_everything, case):
    table, name, values = case
    constraint = f"ck_{table}_{name}"
    assert constraint in _check_names(table)
    sql, params = _copy_with(table, values)
    with app.app_context(), db.engine.connect() as conn:
        before = conn.scalar(text(f"SELECT count(*) FROM {table}"))
        with pytest.raises(DBAPIError) as refused:
            conn.execute(text(sql), params)
        assert constraint in str(refused.value.orig)
        conn.rollback()
        assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == before


def test_the_copy_itself_is_accepted_when_the_values_are_in_range(app, one_of_everything):
    """The refusals above come from the values: the same copy with good values goes in."""
    good = {
        "participants": {"study_code": "BJ302-9999", "reminder_time": "23:59", "arm": "control"},
        "diary_entries": {
            "diary_date": date(2026, 3, 9),
            "client_entry_id": uuid.uuid4().hex,
            "discomfort_grade": 4,
            "recorded_offset_minutes": -1439,
        },
        "schedule_events": {"number": 99, "window_start": date(2000, 1, 1)},
        "reminders": {"target": "diary:2026-03-12", "attempts": 0, "status": "undeliverable"},
    }
    with app.app_context(), db.engine.connect() as conn:
        for table, values in good.items():
            sql, params = _copy_with(table, values)
            assert conn.execute(text(sql), params).rowcount == 1, table
        conn.rollback()


def test_every_constraint_is_tried_and_named_by_the_convention(app):
    tried = {(table, f"ck_{table}_{name}") for table, name, _ in CASES}
    declared = {
        (table.name, name)
        for table in Base.metadata.sorted_tables
        for name in _check_names(table.name)
    }
    assert tried == declared
    assert all(name.startswith(f"ck_{table}_") for table, name in declared)


def test_the_migrated_database_has_exactly_the_models_constraints(app):
    with app.app_context():
        inspector = inspect(db.engine)
        for table in Base.metadata.sorted_tables:
            found = {c["name"] for c in inspector.get_check_constraints(table.name)}
            assert found == _check_names(table.name), table.name
