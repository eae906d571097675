"""The offline queue: many entries in one request, one result each.

A queue whose entries share no key and no day is stored in one transaction; any other
queue, or one whose transaction fails, one entry at a time. Both give the same results.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from api.models import Alert, AuditEvent, DiaryEntry, DiaryEntryVersion
from tests.helpers import statements_sent
from tests.test_diary_entries import ENROLLED, MINE, NOW, body

SYNC = f"{MINE}/sync"


def count(factory, model=DiaryEntry) -> int:
    return factory.scalar(select(func.count()).select_from(model))


@pytest.fixture
def participant(factory, clock):
    clock.set(NOW)
    return factory.participant(enrolled_on=ENROLLED)


@pytest.fixture
def phone(factory, participant):
    return factory.as_(participant)


def test_each_entry_gets_its_own_result_and_bad_ones_block_nothing(phone, factory):
    stored = phone.post(MINE, json=body("2026-03-10")).json
    first = body("2026-03-09")
    queue = [
        first,
        {**body("2026-03-10"), "note": "a second entry for a day that has one"},
        body("2026-03-08", leg_edema=9),
        {**first, "discomfort_grade": 4},  # the phone queued the same entry twice
        body("2026-03-07"),  # older than the backfill window
        "not an object",
        body("2026-03-08"),
        {"client_entry_id": stored["client_entry_id"]},  # a broken replay is still rejected
    ]
    response = phone.post(SYNC, json={"entries": queue})
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [r["status"] for r in results] == [
        "created",
        "conflict",
        "rejected",
        "replayed",
        "rejected",
        "rejected",
        "created",
        "rejected",
    ]
    assert [r["index"] for r in results] == list(range(8))
    assert [r["client_entry_id"] for r in results[:5]] == [q["client_entry_id"] for q in queue[:5]]
    assert results[5]["client_entry_id"] is None
    created = results[0]["entry"]
    assert created["diary_date"] == "2026-03-09" and created["version"] == 1
    assert created["recorded_at"] == first["recorded_at"]
    assert results[3]["entry"] == created  # replay: the stored values, not the resent ones
    assert results[1]["error"] == "entry_exists_for_date"
    assert results[1]["existing_entry_id"] == stored["id"]
    assert results[1]["entry"] is None
    assert results[2]["error"] == "validation_failed"
    assert set(results[2]["errors"]) == {"leg_edema"}
    assert results[4]["error"] == "backfill_window_closed"
    assert set(results[4]["errors"]) == {"diary_date"}
    assert set(results[5]["errors"]) == {"_schema"}
    assert {"diary_date", "recorded_at"} <= set(results[7]["errors"])
    assert count(factory) == 3
    assert count(factory, DiaryEntryVersion) == 3
    created_audits = select(func.count()).where(AuditEvent.action == "diary_entry.created")
    assert factory.scalar(created_audits) == 3
    # The created entries are readable with the values the phone sent.
    listed = {e["diary_date"]: e for e in phone.get(MINE).json}
    assert listed["2026-03-09"] == created
    assert listed["2026-03-08"]["leg_edema"] == 0


def test_a_whole_queue_resent_is_all_replays(phone, factory):
    queue = [body(day) for day in ("2026-03-08", "2026-03-09", "2026-03-10")]
    first = phone.post(SYNC, json={"entries": queue}).json["results"]
    again = phone.post(SYNC, json={"entries": queue}).json["results"]
    assert [r["status"] for r in first] == ["created"] * 3
    assert [r["status"] for r in again] == ["replayed"] * 3
    assert [r["entry"] for r in again] == [r["entry"] for r in first]
    assert count(factory) == 3


def test_up_to_100_entries_are_taken_and_more_are_422(phone, factory):
    too_many = [body("2026-03-10") for _ in range(101)]
    response = phone.post(SYNC, json={"entries": too_many})
    assert response.status_code == 422
    assert "entries" in response.json["errors"]
    assert count(factory) == 0
    # 100 items (99 of them conflicts for the same day) are answered one by one.
    results = phone.post(SYNC, json={"entries": too_many[:100]}).json["results"]
    assert len(results) == 100
    assert [r["status"] for r in results].count("created") == 1
    assert [r["status"] for r in results].count("conflict") == 99


@pytest.mark.parametrize(
    "envelope",
    [{"entries": "not a list"}, {}, {"entries": [], "extra": 1}, [body()], {"entries": None}],
)
def test_a_broken_envelope_is_422(phone, factory, envelope):
    response = phone.post(SYNC, json=envelope)
    assert response.status_code == 422
    assert response.json["error"] == "validation_failed"
    assert count(factory) == 0


def test_an_empty_queue_is_an_empty_answer(phone):
    assert phone.post(SYNC, json={"entries": []}).json == {"results": []}


def test_sync_is_documented_with_its_item_schema(client):
    doc = client.get("/api/v1/openapi.json").json
    entries = doc["components"]["schemas"]["DiarySync"]["properties"]["entries"]
    assert entries["maxItems"] == 100
    assert entries["items"] == {"allOf": [{"$ref": "#/components/schemas/DiaryEntryCreate"}]}
    result = doc["components"]["schemas"]["DiarySyncResult"]["properties"]
    assert set(result["status"]["enum"]) == {"created", "replayed", "conflict", "rejected"}


@contextmanager
def entry_inserts(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The statements inserting into diary_entries sent inside the block (on PostgreSQL a
    single submit's is a WITH whose first part is that INSERT)."""
    inserts: list[str] = []
    with statements_sent(app) as sent:
        yield inserts
    inserts.extend(s for s in sent if "INSERT INTO DIARY_ENTRIES " in s.upper())


def _mixed_queue(stored_key: str) -> list[Any]:
    """Distinct keys and days, every kind of result: created (one with an alert),
    conflict, replay of a refused resend, refused, rejected by validation."""
    return [
        body("2026-03-09"),
        body("2026-03-10", note="a second entry for a day that has one"),
        body("2026-03-06", client_entry_id=stored_key),  # a resend, now outside the window
        body("2026-03-08", discomfort_grade=4),
        body("2026-03-07"),  # older than the backfill window
        "not an object",
        body("2026-03-11", leg_edema=9),
    ]


def _comparable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Results without what differs between two participants (row ids)."""
    own = ("id", "participant_id")
    return [
        {
            **r,
            "entry": r["entry"] and {k: v for k, v in r["entry"].items() if k not in own},
            "existing_entry_id": r["existing_entry_id"] is not None,
        }
        for r in results
    ]


def _written(factory, participant) -> tuple[int, ...]:  # type: ignore[no-untyped-def]
    return tuple(
        factory.scalar(
            select(func.count()).select_from(model).where(model.participant_id == participant.id)
        )
        for model in (DiaryEntry, DiaryEntryVersion, AuditEvent, Alert)
    )


def test_a_queue_at_once_answers_what_one_at_a_time_answers(app, factory, clock, monkeypatch):
    """The same queue for two participants with the same history: stored in one go for
    the first (one INSERT of entries), one entry at a time for the second; the results
    and the rows written are the same."""
    from api.services import diary as service

    clock.set(NOW)
    twins = [factory.participant(enrolled_on=ENROLLED) for _ in range(2)]
    stored = body("2026-03-10")
    queue = _mixed_queue(stored["client_entry_id"])  # keys are unique per participant
    answers, inserts = [], []
    for n, twin in enumerate(twins):
        phone = factory.as_(twin)
        assert phone.post(MINE, json=stored).status_code == 201
        if n == 1:
            monkeypatch.setattr(service, "keys_and_days_distinct", lambda queue: False)
        with entry_inserts(app) as sent:
            response = phone.post(SYNC, json={"entries": queue})
        assert response.status_code == 200, response.json
        answers.append(response.json["results"])
        inserts.append(len(sent))
    assert [r["status"] for r in answers[0]] == [
        "created",
        "conflict",
        "replayed",
        "created",
        "rejected",
        "rejected",
        "rejected",
    ]
    assert answers[0][2]["entry"]["client_entry_id"] == stored["client_entry_id"]
    assert _comparable(answers[0]) == _comparable(answers[1])
    assert inserts == [1, 3]  # one for the queue; one per entry that passed the rules
    assert (
        _written(factory, twins[0]) == _written(factory, twins[1]) == (3, 3, 4, 1)
    )  # entries, versions, audit rows (one of the alert), alerts


def test_a_queue_sharing_a_day_is_stored_one_entry_at_a_time(app, phone, factory):
    queue = [body("2026-03-09"), body("2026-03-09"), body("2026-03-08")]
    with entry_inserts(app) as sent:
        results = phone.post(SYNC, json={"entries": queue}).json["results"]
    assert [r["status"] for r in results] == ["created", "conflict", "created"]
    assert len(sent) == 3
    assert count(factory) == 2


def test_an_outage_inside_the_queues_transaction_writes_nothing(phone, factory, monkeypatch):
    """The database goes away after the entries' INSERT: 503, and not one row of the
    queue is left (the phone resends all of it)."""
    from api.services import diary as service

    def gone(*args: Any) -> None:
        raise OperationalError("INSERT INTO audit_events ...", {}, ConnectionError("server closed"))

    # The queue's INSERT goes in, its history fails; so does the one-at-a-time retry's
    # (on PostgreSQL a single submit's entry and history are one statement).
    monkeypatch.setattr(service, "_chain_created", gone)
    monkeypatch.setattr(service, "_insert_with_history", gone)
    queue = [body(day) for day in ("2026-03-08", "2026-03-09", "2026-03-10")]
    response = phone.post(SYNC, json={"entries": queue})
    assert response.status_code == 503, response.json
    assert response.json["error"] == "database_unavailable"
    assert count(factory) == 0
    monkeypatch.undo()
    results = phone.post(SYNC, json={"entries": queue}).json["results"]
    assert [r["status"] for r in results] == ["created"] * 3
    assert (count(factory), count(factory, DiaryEntryVersion)) == (3, 3)
