"""The offline queue: many entries in one request, one result and one transaction each."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.models import AuditEvent, DiaryEntry, DiaryEntryVersion
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
