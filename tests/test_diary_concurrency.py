"""Parallel requests: the database's unique constraints, not Python checks, keep the diary whole.

Each thread has its own test client (its own app context, session and connection); a
barrier releases them together. On PostgreSQL the inserts race for real; on SQLite the
write lock (BEGIN IMMEDIATE) makes them queue, and the outcome must be the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from api.models import Alert, AuditEvent, DiaryEntry, DiaryEntryVersion
from tests.test_diary_entries import ENROLLED, MINE, NOW, body

THREADS = 8


def parallel(app: Flask, n: int, call: Callable[[FlaskClient, int], Any]) -> list[Any]:
    """Run `call` in `n` threads at once, each with its own client; results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=30)
            results[i] = call(client, i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def count(factory, model=DiaryEntry) -> int:
    return factory.scalar(select(func.count()).select_from(model))


@pytest.fixture
def participant(factory, clock):
    clock.set(NOW)
    return factory.participant(enrolled_on=ENROLLED)


@pytest.fixture
def auth(factory, participant) -> dict[str, str]:
    return {"Authorization": f"Bearer {factory.token(participant)}"}


def test_identical_submissions_at_once_make_one_row(app, factory, auth):
    sent = body(discomfort_grade=4)
    responses = parallel(app, THREADS, lambda c, i: c.post(MINE, json=sent, headers=auth))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], [r.json for r in responses]
    assert len({r.json["id"] for r in responses}) == 1
    assert len({r.headers["ETag"] for r in responses}) == 1
    assert count(factory) == 1
    assert count(factory, DiaryEntryVersion) == 1
    assert count(factory, Alert) == 1
    created = select(func.count()).where(AuditEvent.action == "diary_entry.created")
    assert factory.scalar(created) == 1


def test_different_entries_for_one_day_at_once_make_one_201_and_409s(app, factory, auth):
    bodies = [body(note=f"phone {i}") for i in range(THREADS)]
    responses = parallel(app, THREADS, lambda c, i: c.post(MINE, json=bodies[i], headers=auth))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (THREADS - 1), [r.json for r in responses]
    [winner] = [r.json for r in responses if r.status_code == 201]
    losers = [r.json for r in responses if r.status_code == 409]
    assert {r["error"] for r in losers} == {"entry_exists_for_date"}
    assert {r["existing_entry_id"] for r in losers} == {winner["id"]}
    assert count(factory) == 1
    assert count(factory, DiaryEntryVersion) == 1


def test_concurrent_corrections_with_one_etag_make_one_version(app, factory, auth):
    created = app.test_client().post(MINE, json=body(), headers=auth)
    url = f"{MINE}/{created.json['id']}"
    headers = {**auth, "If-Match": created.headers["ETag"]}
    responses = parallel(
        app, THREADS, lambda c, i: c.patch(url, json={"leg_edema": i % 4 + 1}, headers=headers)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (THREADS - 1), [r.json for r in responses]
    assert {r.json["error"] for r in responses if r.status_code == 412} == {"precondition_failed"}
    [winner] = [r.json for r in responses if r.status_code == 200]
    versions = factory.scalars(select(DiaryEntryVersion).order_by(DiaryEntryVersion.version))
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].leg_edema == winner["leg_edema"]
    entry = factory.scalar(select(DiaryEntry))
    assert (entry.version, entry.leg_edema) == (2, winner["leg_edema"])


def test_the_same_queue_synced_from_several_threads_is_stored_once(app, factory, auth):
    queue = [body(day) for day in ("2026-03-08", "2026-03-09", "2026-03-10")]
    responses = parallel(
        app, 4, lambda c, i: c.post(f"{MINE}/sync", json={"entries": queue}, headers=auth)
    )
    assert {r.status_code for r in responses} == {200}
    by_item = list(zip(*(r.json["results"] for r in responses), strict=True))
    for results in by_item:
        assert sorted(r["status"] for r in results) == ["created"] + ["replayed"] * 3
        assert len({r["entry"]["id"] for r in results}) == 1
    assert count(factory) == 3
    assert count(factory, DiaryEntryVersion) == 3
