"""Staff sign-in, participant activation, refresh rotation, token checks, rate limits."""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import timedelta

import jwt
import pytest

from api.models import StaffUser
from tests.helpers import PASSWORD

LOGIN = "/api/v1/auth/staff/login"
ACTIVATE = "/api/v1/auth/participants/activate"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"


def login(client, email, password=PASSWORD):
    return client.post(LOGIN, json={"email": email, "password": password})


def test_staff_login_returns_a_token_pair(client, factory, app):
    staff = factory.staff("coordinator", sites=("BJ302",))
    response = login(client, staff.email.upper())
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256" and header["kid"] == app.config["JWT_KEY_ID"]
    claims = jwt.decode(
        body["access_token"],
        app.config["JWT_SECRET"],
        algorithms=["HS256"],
        audience=app.config["JWT_AUDIENCE"],
    )
    assert claims["sub"] == f"staff:{staff.id}"
    assert claims["role"] == "coordinator"
    assert claims["iss"] == app.config["JWT_ISSUER"]
    assert {"exp", "iat", "jti", "nbf"} <= set(claims)
    assert (
        client.get(
            "/api/v1/sites", headers={"Authorization": f"Bearer {body['access_token']}"}
        ).status_code
        == 200
    )


@pytest.mark.parametrize("email,password", [("nobody@example.org", PASSWORD), (None, "wrong")])
def test_wrong_credentials_are_401_without_saying_which(client, factory, email, password):
    staff = factory.staff()
    response = login(client, email or staff.email, password)
    assert response.status_code == 401
    assert response.json["error"] == "invalid_credentials"


def test_inactive_staff_cannot_log_in(client, factory):
    staff = factory.staff()
    factory.update(StaffUser, staff.id, is_active=False)
    assert login(client, staff.email).status_code == 401


def test_login_body_is_validated(client):
    response = client.post(LOGIN, json={"email": "a@b.org", "password": "x", "role": "admin"})
    assert response.status_code == 422
    assert "role" in response.json["errors"]
    assert response.json["error"] == "validation_failed"


def test_repeated_failed_logins_for_one_account_from_one_client_are_refused(client, factory):
    staff = factory.staff()
    for _ in range(5):
        assert login(client, staff.email, "wrong password").status_code == 401
    response = login(client, staff.email)  # from this client even the right password waits
    assert response.status_code == 429
    assert response.json["error"] == "too_many_attempts"
    assert response.json["code"] == 429
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    # Another account from the same client is not locked by this one.
    other = factory.staff()
    assert login(client, other.email).status_code == 200
    # The owner, from another client, signs in at once.
    elsewhere = {"REMOTE_ADDR": "198.51.100.7"}
    owner = client.post(
        LOGIN, json={"email": staff.email, "password": PASSWORD}, environ_base=elsewhere
    )
    assert owner.status_code == 200


def test_repeated_failed_logins_from_one_client_are_refused(client, factory):
    staff = factory.staff()
    for n in range(30):
        assert login(client, f"guess{n}@example.org", "x").status_code == 401
    assert login(client, staff.email).status_code == 429


def test_successful_logins_do_not_count_against_the_limit(client, factory):
    staff = factory.staff()
    for _ in range(8):
        assert login(client, staff.email).status_code == 200


def _pair(client, email):
    return login(client, email).json


def test_refresh_rotates_and_reuse_revokes_the_family(app, client, factory, clock):
    staff = factory.staff()
    first = _pair(client, staff.email)
    second = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    third = client.post(REFRESH, json={"refresh_token": second.json["refresh_token"]})
    assert third.status_code == 200
    # Past the grace period for retries (tests/test_refresh_sessions.py), reuse is theft.
    clock.set(clock() + app.config["REFRESH_REUSE_GRACE"] + timedelta(seconds=1))
    reuse = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert reuse.json["error"] == "refresh_token_reused"
    # The newest token of the family is dead too.
    latest = client.post(REFRESH, json={"refresh_token": third.json["refresh_token"]})
    assert latest.status_code == 401
    # Another session of the same person is untouched.
    other = _pair(client, staff.email)
    assert client.post(REFRESH, json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_concurrent_refresh_with_one_token_never_revokes_the_family(app, factory):
    """Six concurrent refreshes of one token: one rotation, five retries within the grace.

    Every answer is a working pair; the family stays alive (more in
    tests/test_refresh_sessions.py).
    """
    staff = factory.staff()
    token = _pair(app.test_client(), staff.email)["refresh_token"]
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(6)

    def use() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(REFRESH, json={"refresh_token": token})
        results.append((response.status_code, response.json))

    threads = [threading.Thread(target=use) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(code for code, _ in results) == [200] * 6
    client = app.test_client()
    for _, body in results:
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        assert client.get("/api/v1/sites", headers=headers).status_code == 200
    kept = results[-1][1]["refresh_token"]
    assert client.post(REFRESH, json={"refresh_token": kept}).status_code == 200


def test_logout_revokes_the_refresh_token(client, factory):
    staff = factory.staff()
    pair = _pair(client, staff.email)
    assert client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]}).status_code == 204
    assert client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401
    # Logging out twice (or with an unknown token) is harmless.
    assert client.post(LOGOUT, json={"refresh_token": pair["refresh_token"]}).status_code == 204


def test_expired_refresh_token_is_refused(client, factory, clock):
    staff = factory.staff()
    pair = _pair(client, staff.email)
    clock.set(clock() + timedelta(days=31))
    assert client.post(REFRESH, json={"refresh_token": pair["refresh_token"]}).status_code == 401


def test_expired_access_token_is_401(client, factory, clock):
    staff = factory.staff()
    token = factory.token(staff)
    clock.set(clock() + timedelta(minutes=16))
    response = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json["error"] == "token_expired"


def test_missing_or_malformed_authorization_is_401(client):
    assert client.get("/api/v1/sites").json["error"] == "missing_token"
    for header in ("Basic abc", "Bearer", "Bearer not.a.jwt"):
        response = client.get("/api/v1/sites", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_a_token_whose_header_nests_past_the_recursion_limit_is_401(client):
    """`json.loads` gives up on such a header with RecursionError: still a bad token."""
    header = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).rstrip(b"=").decode()
    response = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {header}.e30.sig"})
    assert response.status_code == 401
    assert response.json["error"] == "invalid_token"


def test_previous_signing_key_still_verifies_during_rotation(app, factory):
    staff = factory.staff()
    old_token = factory.token(staff)
    old_secret, old_kid = app.config["JWT_SECRET"], app.config["JWT_KEY_ID"]
    try:
        app.config.update(
            JWT_SECRET="n" * 48, JWT_KEY_ID="k2", JWT_PREVIOUS_KEYS={old_kid: old_secret}
        )
        headers = {"Authorization": f"Bearer {old_token}"}
        assert app.test_client().get("/api/v1/sites", headers=headers).status_code == 200
        app.config["JWT_PREVIOUS_KEYS"] = {}
        assert app.test_client().get("/api/v1/sites", headers=headers).status_code == 401
    finally:
        app.config.update(JWT_SECRET=old_secret, JWT_KEY_ID=old_kid, JWT_PREVIOUS_KEYS={})


def test_participant_activation_is_one_time(client, factory):
    participant = factory.participant()
    code = participant.activation_code
    first = client.post(ACTIVATE, json={"activation_code": code.lower().replace("-", " ")})
    assert first.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {first.json['access_token']}"})
    assert me.status_code == 200
    assert me.json["study_code"] == participant.study_code
    second = client.post(ACTIVATE, json={"activation_code": code})
    assert second.status_code == 401
    assert second.json["error"] == "invalid_activation_code"


def test_activation_code_expires_after_14_days(client, factory, clock):
    participant = factory.participant()
    clock.set(clock() + timedelta(days=14, seconds=1))
    response = client.post(ACTIVATE, json={"activation_code": participant.activation_code})
    assert response.status_code == 401


def test_reissued_code_revokes_old_sessions_and_old_code(client, factory):
    participant = factory.participant()
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    phone = client.post(ACTIVATE, json={"activation_code": participant.activation_code}).json
    reissue = factory.as_(coordinator).post(
        f"/api/v1/participants/{participant.id}/activation-code", json={"reason": "lost phone"}
    )
    assert reissue.status_code == 201
    new_code = reissue.json["activation_code"]
    old_access = {"Authorization": f"Bearer {phone['access_token']}"}
    assert client.get("/api/v1/me", headers=old_access).json["error"] == "session_revoked"
    assert client.post(REFRESH, json={"refresh_token": phone["refresh_token"]}).status_code == 401
    new_phone = client.post(ACTIVATE, json={"activation_code": new_code})
    assert new_phone.status_code == 200


def test_unused_code_is_revoked_by_a_reissue(client, factory):
    participant = factory.participant()
    coordinator = factory.staff()
    factory.as_(coordinator).post(f"/api/v1/participants/{participant.id}/activation-code", json={})
    response = client.post(ACTIVATE, json={"activation_code": participant.activation_code})
    assert response.status_code == 401


def test_withdrawn_participant_cannot_refresh(client, factory):
    participant = factory.participant()
    coordinator = factory.staff()
    phone = client.post(ACTIVATE, json={"activation_code": participant.activation_code}).json
    factory.as_(coordinator).patch(
        f"/api/v1/participants/{participant.id}",
        json={"status": "withdrawn", "reason": "consent withdrawn"},
    )
    assert client.post(REFRESH, json={"refresh_token": phone["refresh_token"]}).status_code == 401


def test_activation_attempts_are_rate_limited_per_client(client):
    for n in range(30):
        response = client.post(ACTIVATE, json={"activation_code": f"WRONG-CODE-{n:04d}"})
        assert response.status_code == 401
    assert client.post(ACTIVATE, json={"activation_code": "WRONG-CODE-9999"}).status_code == 429


def test_failed_login_counts_live_in_redis_when_configured(app, tmp_path, database_url):
    """With a Redis storage the count outlives the process that made it.

    A second app (as another server process would) starts with no memory of its own and
    still refuses the account: the count came from Redis.
    """
    import os

    from api import create_app

    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "AUTO_MIGRATE": False,
        "RATELIMIT_STORAGE_URI": redis_url,
    }
    body = {"email": f"shared-{uuid.uuid4().hex}@example.org", "password": "wrong"}
    # A client address of its own, so runs sharing this Redis never add up.
    rand = uuid.uuid4().int
    client_env = {"REMOTE_ADDR": f"127.{rand % 250}.{rand // 250 % 250}.{rand // 62500 % 250}"}

    def attempt(app) -> int:
        return app.test_client().post(LOGIN, json=body, environ_base=client_env).status_code

    first = create_app(config)
    for _ in range(5):
        assert attempt(first) == 401
    second = create_app(config)
    assert attempt(second) == 429
    # The in-memory default forgets: a new process would start from zero.
    third = create_app({**config, "RATELIMIT_STORAGE_URI": "memory://"})
    assert attempt(third) == 401


# --- the participant principal --------------------------------------------------------------


def _participant_request(app, factory):
    participant = factory.participant()
    token = factory.token(participant)
    return participant, app.test_request_context(headers={"Authorization": f"Bearer {token}"})


def test_a_participants_principal_reads_the_facts_it_needs_and_loads_the_rest_once(app, factory):
    """Authentication reads the columns the session check and the diary rules use (a
    diary submit needs no more); `Principal.participant` loads the whole participant on
    first use, once, as the session's clean object."""
    from sqlalchemy import inspect

    from api.auth import current_principal
    from api.extensions import db
    from tests.helpers import statements_sent

    participant, context = _participant_request(app, factory)
    with context:
        principal = current_principal()
        assert principal.participant_row is not None
        assert set(principal.participant_row._fields) == {
            "id",
            "site_id",
            "auth_epoch",
            "status",
            "timezone",
            "enrolled_on",
        }
        assert principal.participant_row.enrolled_on == participant.enrolled_on
        with statements_sent(app) as sent:
            made = principal.participant
            assert made is principal.participant
            assert made is not None and made.study_code == participant.study_code
        assert len(sent) == 1 and "FROM participants" in sent[0]
        assert made in db.session
        assert not inspect(made).modified and made not in db.session.dirty


def test_a_participant_already_in_the_session_is_the_principals_object(app, factory):
    """No second object for one identity: the session's own is handed out."""
    from api.auth import current_principal
    from api.extensions import db
    from api.models import Participant

    participant, context = _participant_request(app, factory)
    with context:
        principal = current_principal()
        loaded = db.session.get(Participant, participant.id)
        assert principal.participant is loaded


def test_a_change_through_the_principals_object_is_stored(app, factory):
    """The object made from the row is a persistent one: its changes are flushed."""
    from api.auth import current_principal
    from api.extensions import db
    from api.models import Participant

    participant, context = _participant_request(app, factory)
    with context:
        made = current_principal().participant
        assert made is not None
        made.locale = "en" if made.locale == "zh-CN" else "zh-CN"
        changed_to = made.locale
        db.session.commit()
    with app.app_context():
        assert db.session.get(Participant, participant.id).locale == changed_to
