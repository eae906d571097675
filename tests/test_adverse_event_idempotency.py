"""`POST /participants/{id}/adverse-events` with an `Idempotency-Key`: created once.

The same key and body answer the stored record (200); the same key with another body is
409 `idempotency_key_reused`; a key that is not a UUID is 422 naming the header; without
the header nothing changes (201 every time). Eight threads posting one key at once make
one record, decided by the database's unique index (both databases).
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from api.models import AdverseEvent, Alert, AuditEvent
from api.services.adverse_events import request_hash
from tests.test_adverse_events import AE, NOW, _url
from tests.test_diary_concurrency import THREADS, parallel

SERIOUS = {**AE, "term": "Hepatocellular carcinoma", "grade": 4, "seriousness": ["tumour"]}


@pytest.fixture
def site(factory, clock):
    clock.set(NOW)
    return {
        "coordinator": factory.staff(),
        "p": factory.participant(enrolled_on=date(2026, 2, 1)),
    }


def _count(factory, model=AdverseEvent) -> int:
    return factory.scalar(select(func.count()).select_from(model))


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_same_key_same_body_answers_the_stored_record(factory, site):
    client, key = factory.as_(site["coordinator"]), _key()
    first = client.post(_url(site["p"]), json=SERIOUS, headers=key)
    assert first.status_code == 201, first.json
    # The same body written differently: other key order, criteria repeated, null fields.
    resent = {**dict(reversed(list(SERIOUS.items()))), "seriousness": ["tumour", "tumour"]}
    for body in (SERIOUS, {**resent, "description": None}):
        again = client.post(_url(site["p"]), json=body, headers=key)
        assert again.status_code == 200, again.json
        assert again.json == first.json
    assert _count(factory) == 1
    assert _count(factory, Alert) == 1  # one urgent alert, not one per request
    created = select(func.count()).where(AuditEvent.action == "adverse_event.created")
    assert factory.scalar(created) == 1


def test_same_key_other_body_is_a_conflict(factory, site):
    client, key = factory.as_(site["coordinator"]), _key()
    assert client.post(_url(site["p"]), json=AE, headers=key).status_code == 201
    other = client.post(_url(site["p"]), json={**AE, "grade": 3}, headers=key)
    assert other.status_code == 409, other.json
    assert other.json["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.json["errors"]
    assert _count(factory) == 1


def test_the_stored_record_is_answered_as_it_stands(factory, site):
    """A retry after an amendment: the record now, still 200 (the key's body is the same)."""
    client, key = factory.as_(site["coordinator"]), _key()
    made = client.post(_url(site["p"]), json=AE, headers=key).json
    amended = client.patch(_url(site["p"], made["id"]), json={"grade": 3, "reason": "graded again"})
    assert amended.status_code == 200, amended.json
    again = client.post(_url(site["p"]), json=AE, headers=key)
    assert (again.status_code, again.json["grade"], again.json["version"]) == (200, 3, 2)


@pytest.mark.parametrize("value", ["not-a-uuid", "", "1234", str(uuid.uuid4()) + "0"])
def test_a_key_that_is_not_a_uuid_is_refused_naming_the_header(factory, site, value):
    client = factory.as_(site["coordinator"])
    response = client.post(_url(site["p"]), json=AE, headers={"Idempotency-Key": value})
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == ["Idempotency-Key"]
    assert _count(factory) == 0


def test_without_the_header_every_post_creates(factory, site):
    client = factory.as_(site["coordinator"])
    statuses = [client.post(_url(site["p"]), json=AE).status_code for _ in range(2)]
    assert statuses == [201, 201]
    assert _count(factory) == 2


def test_keys_are_per_participant(factory, site):
    """Another participant's record under the same key is no conflict (and reveals none)."""
    other = factory.participant(enrolled_on=date(2026, 2, 1))
    client, key = factory.as_(site["coordinator"]), _key()
    assert client.post(_url(site["p"]), json=AE, headers=key).status_code == 201
    second = client.post(_url(other), json={**AE, "grade": 1}, headers=key)
    assert second.status_code == 201, second.json
    assert _count(factory) == 2


def test_a_refused_request_stores_no_key(factory, site):
    """A request the rules refuse leaves its key free: the corrected body may use it."""
    client, key = factory.as_(site["coordinator"]), _key()
    refused = client.post(_url(site["p"]), json={**AE, "onset_date": "2026-01-01"}, headers=key)
    assert refused.status_code == 409 and refused.json["error"] == "before_enrolment"
    assert client.post(_url(site["p"]), json=AE, headers=key).status_code == 201


def test_another_sites_participant_is_404_with_a_key(factory, site):
    stranger = factory.participant(site="LZU1", enrolled_on=date(2026, 2, 1))
    response = factory.as_(site["coordinator"]).post(_url(stranger), json=AE, headers=_key())
    assert response.status_code == 404, response.json
    assert _count(factory) == 0


def test_concurrent_posts_with_one_key_make_one_record(app, factory, site):
    token = factory.token(site["coordinator"])
    headers = {"Authorization": f"Bearer {token}", **_key()}

    def post(client, _i):  # type: ignore[no-untyped-def]
        response = client.post(_url(site["p"]), json=SERIOUS, headers=headers)
        return response.status_code, response.get_json()

    results = parallel(app, THREADS, post)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (THREADS - 1) + [201], results
    assert len({body["id"] for _, body in results}) == 1
    assert _count(factory) == 1
    assert _count(factory, Alert) == 1


def test_concurrent_posts_with_one_key_and_other_bodies(app, factory, site):
    """Racing bodies under one key: one record; its own body's twins 200, the rest 409."""
    token = factory.token(site["coordinator"])
    headers = {"Authorization": f"Bearer {token}", **_key()}

    def post(client, i):  # type: ignore[no-untyped-def]
        body = {**AE, "grade": i % 2}
        response = client.post(_url(site["p"]), json=body, headers=headers)
        return i % 2, response.status_code, response.get_json()

    results = parallel(app, THREADS, post)
    winner = next(grade for grade, status, _ in results if status == 201)
    for grade, status, body in results:
        if grade == winner:
            assert status in {200, 201}, body
        else:
            assert (status, body["error"]) == (409, "idempotency_key_reused"), body
    assert [s for _, s, _ in results].count(201) == 1
    assert _count(factory) == 1


def test_request_hash_is_canonical():
    from datetime import UTC, datetime, timedelta, timezone

    shanghai = timezone(timedelta(hours=8))
    a = {"term": "x", "awareness_at": datetime(2026, 3, 1, 8, tzinfo=shanghai), "seriousness": []}
    b = {"awareness_at": datetime(2026, 3, 1, 0, tzinfo=UTC), "term": "x", "description": None}
    assert request_hash(a) == request_hash(b)
    assert request_hash(a) != request_hash({**a, "term": "y"})


def test_openapi_documents_the_header_and_answers(client):
    operation = client.get("/api/v1/openapi.json").json["paths"][
        "/api/v1/participants/{participant_id}/adverse-events"
    ]["post"]
    header = next(p for p in operation["parameters"] if p.get("name") == "Idempotency-Key")
    assert header["in"] == "header" and header["schema"]["format"] == "uuid"
    assert not header.get("required")
    assert {"200", "201", "409", "422"} <= set(operation["responses"])
