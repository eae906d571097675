"""Refresh sessions on bad networks: retries within the grace period, theft, family age."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from api.auth import hash_secret
from api.models import RefreshToken
from tests.helpers import PASSWORD

LOGIN = "/api/v1/auth/staff/login"
ACTIVATE = "/api/v1/auth/participants/activate"
REFRESH = "/api/v1/auth/refresh"


def refresh(client, token: str):  # type: ignore[no-untyped-def]
    return client.post(REFRESH, json={"refresh_token": token})


def works(client, pair: dict) -> bool:  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    return client.get("/api/v1/me", headers=headers).status_code == 200


def phone(client, factory) -> dict:  # type: ignore[no-untyped-def]
    participant = factory.participant()
    response = client.post(ACTIVATE, json={"activation_code": participant.activation_code})
    assert response.status_code == 200
    return response.json


def link(factory, token: str) -> RefreshToken:  # type: ignore[no-untyped-def]
    return factory.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_secret(token)))


def test_a_lost_answer_retried_keeps_the_phone_working(client, factory, clock):
    clock.set("2026-12-01T08:00:00+00:00")
    first = phone(client, factory)
    lost = refresh(client, first["refresh_token"])  # the answer never reaches the phone
    assert lost.status_code == 200
    clock.set("2026-12-01T08:00:40+00:00")  # out of the tunnel: the same token again
    retried = refresh(client, first["refresh_token"])
    assert retried.status_code == 200
    assert retried.json["refresh_token"] != lost.json["refresh_token"]
    assert works(client, retried.json)
    # The phone goes on with what it received, for days.
    clock.set("2026-12-01T09:00:00+00:00")
    later = refresh(client, retried.json["refresh_token"])
    assert later.status_code == 200 and works(client, later.json)
    clock.set("2026-12-03T09:00:00+00:00")
    assert refresh(client, later.json["refresh_token"]).status_code == 200
    # The answer that was lost is dead: it was superseded when the phone's one was used.
    lost_link = link(factory, lost.json["refresh_token"])
    assert lost_link.revoked_reason == "superseded" and lost_link.used_at is None
    # Both answers name the link they came from.
    first_link = link(factory, first["refresh_token"])
    assert lost_link.parent_id == first_link.id
    assert link(factory, retried.json["refresh_token"]).parent_id == first_link.id


def test_the_grace_period_ends_at_its_configured_length(app, client, factory, clock):
    clock.set("2026-12-01T08:00:00+00:00")
    first = phone(client, factory)
    assert refresh(client, first["refresh_token"]).status_code == 200
    grace = app.config["REFRESH_REUSE_GRACE"]
    assert grace == timedelta(seconds=60)
    clock.set(clock() + grace)  # the last instant of the grace period
    assert refresh(client, first["refresh_token"]).status_code == 200
    clock.set(clock() + timedelta(seconds=1))
    late = refresh(client, first["refresh_token"])
    assert late.status_code == 401
    assert late.json["error"] == "refresh_token_reused"


def test_a_thief_replaying_after_the_grace_revokes_the_family(client, factory, clock):
    clock.set("2026-12-01T08:00:00+00:00")
    stolen = phone(client, factory)
    clock.set("2026-12-01T08:15:00+00:00")
    owner = refresh(client, stolen["refresh_token"]).json
    clock.set("2026-12-01T08:30:00+00:00")
    owner = refresh(client, owner["refresh_token"]).json
    clock.set("2026-12-01T08:30:30+00:00")
    replay = refresh(client, stolen["refresh_token"])
    assert replay.status_code == 401
    assert replay.json["error"] == "refresh_token_reused"
    # The owner's newest token is dead too: the whole family is revoked.
    newest = refresh(client, owner["refresh_token"])
    assert newest.status_code == 401
    assert newest.json["error"] == "invalid_refresh_token"
    assert {row.revoked_reason for row in factory.scalars(select(RefreshToken))} == {
        "reuse_detected"
    }


def test_a_thief_who_moved_first_is_caught_when_the_owner_comes_back(client, factory, clock):
    """The thief rotates within the grace (indistinguishable from a retry), then uses the
    answer; the owner's sibling is superseded, and its use later revokes the thief too."""
    clock.set("2026-12-01T08:00:00+00:00")
    first = phone(client, factory)
    owner = refresh(client, first["refresh_token"]).json
    clock.set("2026-12-01T08:00:10+00:00")
    thief = refresh(client, first["refresh_token"]).json
    clock.set("2026-12-01T08:00:20+00:00")
    thief = refresh(client, thief["refresh_token"]).json
    clock.set("2026-12-01T08:15:00+00:00")
    back = refresh(client, owner["refresh_token"])
    assert back.status_code == 401
    assert back.json["error"] == "refresh_token_reused"
    assert refresh(client, thief["refresh_token"]).status_code == 401


def _race(app, token: str, n: int) -> list[tuple[int, dict]]:  # type: ignore[no-untyped-def]
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(n)

    def use() -> None:
        client = app.test_client()
        barrier.wait()
        response = refresh(client, token)
        results.append((response.status_code, response.json))

    threads = [threading.Thread(target=use) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_concurrent_refreshes_both_answer_and_either_answer_goes_on(app, factory):
    """Both answers work, whichever the phone keeps; the family is never revoked."""
    client = app.test_client()
    for keep in (0, 1):
        first = phone(client, factory)
        results = _race(app, first["refresh_token"], 2)
        assert [code for code, _ in results] == [200, 200]
        assert all(works(client, body) for _, body in results)
        kept = results[keep][1]
        nxt = refresh(client, kept["refresh_token"])
        assert nxt.status_code == 200 and works(client, nxt.json)
        assert refresh(client, nxt.json["refresh_token"]).status_code == 200
        family = link(factory, first["refresh_token"]).family_id
        reasons = {
            row.revoked_reason
            for row in factory.scalars(select(RefreshToken).where(RefreshToken.family_id == family))
        }
        assert "reuse_detected" not in reasons


def test_concurrent_refreshes_of_the_two_answers_never_revoke_the_family(app, factory, clock):
    """The phone fires two refreshes, then two more with the two answers it got."""
    client = app.test_client()
    first = phone(client, factory)
    answers = [body for _, body in _race(app, first["refresh_token"], 2)]
    second: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def use(token: str) -> None:
        c = app.test_client()
        barrier.wait()
        response = refresh(c, token)
        second.append((response.status_code, response.json))

    threads = [threading.Thread(target=use, args=(a["refresh_token"],)) for a in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in second) == [200, 200]
    clock.set(clock() + timedelta(minutes=15))
    assert refresh(client, second[-1][1]["refresh_token"]).status_code == 200


def test_a_family_ends_180_days_after_sign_in_however_often_rotated(app, client, factory, clock):
    assert app.config["REFRESH_FAMILY_MAX_AGE"] == timedelta(days=180)
    start = clock.set("2026-01-01T08:00:00+00:00")
    staff = factory.staff()
    pair = client.post(LOGIN, json={"email": staff.email, "password": PASSWORD}).json
    day = 0
    while day < 179:  # rotated every 10 days: each link would live 30 days
        day += 10 if day + 10 < 179 else 179 - day
        clock.set(start + timedelta(days=day))
        response = refresh(client, pair["refresh_token"])
        assert response.status_code == 200, day
        pair = response.json
    newest = link(factory, pair["refresh_token"])
    assert newest.family_started_at == start
    assert newest.expires_at == start + timedelta(days=180)  # capped, not day 179 + 30
    clock.set(start + timedelta(days=180))
    ended = refresh(client, pair["refresh_token"])
    assert ended.status_code == 401
    assert ended.json["error"] == "session_expired"
    # A new sign-in starts a new family.
    again = client.post(LOGIN, json={"email": staff.email, "password": PASSWORD})
    assert refresh(client, again.json["refresh_token"]).status_code == 200


def test_a_participant_family_ends_too_and_the_phone_reactivates(client, factory, clock):
    start = clock.set("2026-01-01T08:00:00+00:00")
    pair = phone(client, factory)
    for day in range(25, 180, 25):
        clock.set(start + timedelta(days=day))
        pair = refresh(client, pair["refresh_token"]).json
    clock.set(start + timedelta(days=181))
    response = refresh(client, pair["refresh_token"])
    assert response.status_code == 401
    assert response.json["error"] == "session_expired"
    assert "activation code" in response.json["message"]


def test_a_retry_of_a_logged_out_session_is_refused(client, factory):
    first = phone(client, factory)
    assert refresh(client, first["refresh_token"]).status_code == 200
    client.post("/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]})
    response = refresh(client, first["refresh_token"])  # within the grace, but logged out
    assert response.status_code == 401
    assert response.json["error"] == "invalid_refresh_token"
