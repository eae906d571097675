"""Broken and hostile auth: forged tokens, wrong roles, mass assignment, big bodies, leaks.

What tests/test_auth.py and tests/test_participants.py already cover
(expired access and refresh tokens, refresh reuse revoking the family, re-issued codes
revoking sessions, key rotation, the basic mass-assignment fields) is not repeated here.
The route-walking tests read the app's URL map, so endpoints added later are covered too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from api import create_app
from api.extensions import db
from api.models import Base, Participant, StaffUser
from tests.helpers import PASSWORD

API = "/api/v1"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
# Words that only a stack trace, a driver message or a statement would put in a body.
INTERNALS = re.compile(
    r"Traceback|File \"|sqlalchemy|psycopg|sqlite3|IntegrityError|OperationalError|"
    r"\bSELECT\b|\bINSERT\b|\bUPDATE\b|\bDELETE FROM\b|\bWHERE\b|site-packages|/work/",
)


# --- forging tokens --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None, digest=hashlib.sha256):  # type: ignore[no-untyped-def]
    """A JWT built by hand, as an attacker would (no library guard on the key or alg)."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = b"" if key is None else hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def good_claims(app: Flask, who: StaffUser | Participant, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    kind = "staff" if isinstance(who, StaffUser) else "participant"
    claims = {
        "iss": app.config["JWT_ISSUER"],
        "aud": app.config["JWT_AUDIENCE"],
        "sub": f"{kind}:{who.id}",
        "role": getattr(who, "role", "participant"),
        "ep": who.auth_epoch,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def hs256(app: Flask, claims: dict[str, Any], **header: Any) -> str:
    """Signed with the real secret and kid: only the named part is wrong."""
    head = {"alg": "HS256", "typ": "JWT", "kid": app.config["JWT_KEY_ID"], **header}
    return forge(head, claims, app.config["JWT_SECRET"].encode())


def call(client, token: str, path: str = f"{API}/sites"):  # type: ignore[no-untyped-def]
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def assert_refused(response, error: str = "invalid_token") -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.get_json()
    assert response.json["error"] == error, response.json


@pytest.fixture
def admin(factory):  # type: ignore[no-untyped-def]
    return factory.staff("admin", sites=())


def test_the_honest_token_works(app, client, admin):
    """The control: every forged variant below differs from this in one respect only."""
    assert call(client, hs256(app, good_claims(app, admin))).status_code == 200


def test_alg_none_is_refused(app, client, admin):
    claims = good_claims(app, admin)
    for alg in ("none", "None", "NONE", "nOnE"):
        token = forge({"alg": alg, "typ": "JWT", "kid": app.config["JWT_KEY_ID"]}, claims, None)
        assert_refused(call(client, token))
        # With a signature attached anyway.
        signed = forge({"alg": alg, "kid": app.config["JWT_KEY_ID"]}, claims, b"x")
        assert_refused(call(client, signed))


# The development default once committed to the repository, then secrets people pick.
PUBLISHED_AND_WEAK_SECRETS = [
    "dev-only-insecure-secret-change-me-0000000000",
    "",
    "secret",
    "changeme",
    "change-me",
    "password",
    "jwt-secret",
    "your-256-bit-secret",
    "development",
    "test",
    "k1",
]


@pytest.mark.parametrize("kid", ["current", "k0", None])
def test_tokens_forged_with_published_or_weak_secrets_are_refused(app, client, admin, kid):
    """An attacker who read the repository, or guesses, signs an admin token: 401.

    The subject is the first staff row, an admin, as the issue describes it.
    """
    header = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = app.config["JWT_KEY_ID"] if kid == "current" else kid
    claims = good_claims(app, admin)
    for secret in PUBLISHED_AND_WEAK_SECRETS:
        response = call(client, forge(header, claims, secret.encode()))
        assert response.status_code == 401, secret
        assert response.json["error"] == "invalid_token"
    # The control: the same claims signed with the service's own key pass.
    assert call(client, hs256(app, claims)).status_code == 200


def test_the_default_start_signs_with_none_of_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JWT_SECRET", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    fresh = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/d.db"})
    assert fresh.config["JWT_SECRET"] not in PUBLISHED_AND_WEAK_SECRETS
    assert len(fresh.config["JWT_SECRET"]) >= 32


def test_other_hmac_algorithms_with_the_right_secret_are_refused(app, client, admin):
    claims = good_claims(app, admin)
    secret = app.config["JWT_SECRET"].encode()
    for alg, digest in (("HS512", hashlib.sha512), ("HS384", hashlib.sha384)):
        header = {"alg": alg, "typ": "JWT", "kid": app.config["JWT_KEY_ID"]}
        assert_refused(call(client, forge(header, claims, secret, digest)))


def test_algorithm_confusion_with_public_keys_is_refused(app, client, admin):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = good_claims(app, admin)
    kid = app.config["JWT_KEY_ID"]
    # RS256 signed by the attacker's key, with the key itself offered in the header.
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    for header in ({"kid": kid}, {"kid": kid, "jwk": jwk}, {"kid": kid, "jku": "http://x/k"}):
        token = jwt.encode(claims, private, algorithm="RS256", headers=header)
        assert_refused(call(client, token))
    # HS256 keyed with a public key (the classic RS/HS confusion).
    confused = forge({"alg": "HS256", "typ": "JWT", "kid": kid}, claims, public_pem)
    assert_refused(call(client, confused))
    # RS256 in the header over an HMAC made with the real secret.
    mixed = forge({"alg": "RS256", "kid": kid}, claims, app.config["JWT_SECRET"].encode())
    assert_refused(call(client, mixed))


@pytest.mark.parametrize(
    "change",
    [
        {"aud": "another-service"},
        {"aud": ["another-service"]},
        {"iss": "someone-else"},
        {"iss": None},
        {"aud": None},
        {"exp": None},
        {"nbf": None},
        {"iat": None},
        {"jti": None},
        {"sub": None},
        {"exp": "tomorrow"},
        {"nbf": "now"},
        {"sub": 12},
    ],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_wrong_or_missing_claims_are_refused(app, client, admin, change):
    claims = good_claims(app, admin)
    claims.update(change)
    claims = {k: v for k, v in claims.items() if v is not None}
    assert_refused(call(client, hs256(app, claims)))


def test_a_token_not_valid_yet_is_refused(app, client, admin, clock):
    now = clock.set("2026-03-01T12:00:00+00:00")
    start = int(now.timestamp())
    future = good_claims(app, admin, iat=start, nbf=start + 60, exp=start + 900)
    assert_refused(call(client, hs256(app, future)))
    clock.set(now + timedelta(seconds=61))
    assert call(client, hs256(app, future)).status_code == 200


def test_tampered_tokens_are_refused(app, client, factory):
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    token = factory.token(coordinator)
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    # Payload changed (an admin role), signature kept.
    claims["role"] = "admin"
    assert_refused(call(client, f"{head}.{_segment(claims)}.{signature}"))
    # Signature changed by one character, or dropped.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_refused(call(client, f"{head}.{payload}.{flipped}"))
    assert_refused(call(client, f"{head}.{payload}."))
    assert_refused(call(client, f"{head}.{payload}"))
    # Header changed (another kid), signature kept.
    other_head = _segment({"alg": "HS256", "typ": "JWT", "kid": "k0"})
    assert_refused(call(client, f"{other_head}.{payload}.{signature}"))


def test_role_claim_is_not_trusted_over_the_account(app, client, factory):
    """Even correctly signed, a token's `role` does not lift a coordinator to admin."""
    other = factory.participant(site="LZU1")
    coordinator = factory.staff("coordinator", sites=("BJ302",))
    token = hs256(app, good_claims(app, coordinator, role="admin"))
    assert call(client, token, f"{API}/participants/{other.id}").status_code == 404


def test_unknown_or_missing_kid_is_refused(app, client, admin):
    claims = good_claims(app, admin)
    assert_refused(call(client, hs256(app, claims, kid="k9")))
    assert_refused(call(client, hs256(app, claims, kid=None)))
    assert_refused(call(client, hs256(app, claims, kid=["k1"])))
    no_kid = forge({"alg": "HS256", "typ": "JWT"}, claims, app.config["JWT_SECRET"].encode())
    assert_refused(call(client, no_kid))


@pytest.mark.parametrize(
    "head",
    [_b64(b'["HS256"]'), _b64(b"{not json"), "%%%", _b64(b'{"kid": {"k": 1}}'), "", _b64(b"\xff")],
    ids=["list", "not-json", "not-base64", "kid-object", "empty", "not-utf8"],
)
def test_a_token_whose_header_is_not_a_json_object_is_refused(app, client, admin, head):
    signed = hs256(app, good_claims(app, admin))
    assert_refused(call(client, head + signed[signed.index(".") :]))


@pytest.mark.parametrize(
    "sub,error",
    [
        ("staff:999999", "session_revoked"),
        ("participant:999999", "session_revoked"),
        ("robot:1", "invalid_token"),
        ("staff:abc", "invalid_token"),
        ("staff:-1", "invalid_token"),
        ("staff:99999999999999999999", "invalid_token"),
        ("staff:2147483648", "invalid_token"),
        ("staff:0", "invalid_token"),
        ("staff:" + "9" * 5000, "invalid_token"),
        ("staff:\u0663", "invalid_token"),
        ("", "invalid_token"),
    ],
    ids=lambda value: value[:24],
)
def test_unknown_subjects_are_refused(app, client, admin, sub, error):
    assert_refused(call(client, hs256(app, good_claims(app, admin, sub=sub))), error)


def test_a_deactivated_staff_members_token_stops_at_once(app, client, factory):
    staff = factory.staff("coordinator")
    token = factory.token(staff)
    assert call(client, token).status_code == 200
    factory.update(StaffUser, staff.id, is_active=False)
    assert_refused(call(client, token), "session_revoked")


def test_a_participants_role_claim_does_not_make_them_staff(app, client, factory):
    participant = factory.participant()
    forged = hs256(app, good_claims(app, participant, role="admin"))
    response = call(client, forged)
    assert response.status_code == 403
    assert response.json["error"] == "forbidden_role"


def test_tokens_only_come_from_the_authorization_header(app, client, admin):
    token = hs256(app, good_claims(app, admin))
    assert client.get(f"{API}/sites", query_string={"access_token": token}).status_code == 401
    client.set_cookie("access_token", token)
    assert client.get(f"{API}/sites").status_code == 401
    assert client.get(f"{API}/sites", headers={"Authorization": token}).status_code == 401
    assert client.get(f"{API}/sites", headers={"Authorization": f"Token {token}"}).status_code == (
        401
    )


def test_a_reissued_code_leaves_the_old_code_and_refresh_family_dead(client, factory):
    participant = factory.participant()
    coordinator = factory.staff()
    phone = client.post(
        f"{API}/auth/participants/activate", json={"activation_code": participant.activation_code}
    ).json
    rotated = client.post(f"{API}/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert rotated.status_code == 200
    reissue = factory.as_(coordinator).post(
        f"{API}/participants/{participant.id}/activation-code", json={"reason": "new phone"}
    )
    assert reissue.status_code == 201
    # The newest refresh token of the old family, and its access token, are dead.
    new_refresh = rotated.json["refresh_token"]
    assert client.post(f"{API}/auth/refresh", json={"refresh_token": new_refresh}).status_code == (
        401
    )
    assert_refused(call(client, rotated.json["access_token"], f"{API}/me"), "session_revoked")
    # The new code works once; the first code never again.
    code = reissue.json["activation_code"]
    activate = f"{API}/auth/participants/activate"
    assert client.post(activate, json={"activation_code": code}).status_code == 200
    assert client.post(activate, json={"activation_code": code}).status_code == 401
    old = client.post(activate, json={"activation_code": participant.activation_code})
    assert old.status_code == 401


# --- roles on every route --------------------------------------------------------------------


def _routes(app: Flask) -> list[tuple[str, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        public_docs = rule.rule == f"{API}/openapi.json" or rule.rule.startswith(f"{API}/docs")
        if not rule.rule.startswith(f"{API}/") or public_docs:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule))
    return sorted(found)


def _participant_facing(rule: str) -> bool:
    return rule.startswith((f"{API}/auth/", f"{API}/me"))


def _fill(rule: str, participant_id: int) -> str:
    """Path parameters: the participant's own id, 1 for anything else."""
    path = rule.replace("<int:participant_id>", str(participant_id))
    return re.sub(r"<[^>]+>", "1", path)


def _row_counts(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {
            t.name: db.session.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def _send(client, method: str, path: str, token: str):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}", "If-Match": "*"}
    return client.open(path, method=method, json={}, headers=headers)


def test_a_monitor_writes_nowhere(app, client, factory):
    participant = factory.participant()
    monitor = factory.staff("monitor", sites=())
    token = factory.token(monitor)
    writes = [(m, r) for m, r in _routes(app) if m in WRITE_METHODS and not _participant_facing(r)]
    assert len(writes) >= 3  # enrol, change, re-issue at least
    before = _row_counts(app)
    refused = {}
    for method, rule in writes:
        response = _send(client, method, _fill(rule, participant.id), token)
        refused[f"{method} {rule}"] = (response.status_code, response.json.get("error"))
    assert refused == {k: (403, "forbidden_role") for k in refused}
    assert _row_counts(app) == before


def test_a_participant_token_opens_no_staff_route(app, client, factory):
    participant = factory.participant()
    token = factory.token(participant)
    staff_routes = [(m, r) for m, r in _routes(app) if not _participant_facing(r)]
    assert len(staff_routes) >= 5
    before = _row_counts(app)
    answers = {
        f"{m} {r}": _send(client, m, _fill(r, participant.id), token).status_code
        for m, r in staff_routes
    }
    assert answers == {k: 403 for k in answers}
    assert _row_counts(app) == before


def test_a_staff_token_opens_no_participant_route(app, client, factory):
    participant = factory.participant()
    own_routes = [(m, r) for m, r in _routes(app) if r.startswith(f"{API}/me")]
    assert own_routes
    for role in ("coordinator", "monitor", "admin"):
        token = factory.token(factory.staff(role))
        answers = {
            f"{m} {r}": _send(client, m, _fill(r, participant.id), token).status_code
            for m, r in own_routes
        }
        assert answers == {k: 403 for k in answers}, role


# --- mass assignment -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("id", 999),
        ("site_id", 2),
        ("participant_id", 2),
        ("auth_epoch", 5),
        ("status_reason", "x"),
        ("status_changed_at", "2026-01-01T00:00:00+00:00"),
        ("activation_code", "AAAA-BBBB-CCCC"),
        ("created_at", "2026-01-01T00:00:00+00:00"),
        ("version", 9),
        ("role", "admin"),
    ],
)
def test_me_patch_refuses_every_field_but_the_profile(factory, field, value):
    participant = factory.participant()
    phone = factory.as_(participant)
    before = phone.get(f"{API}/me").json
    # A valid change smuggling the field along: the whole request is refused.
    response = phone.patch(f"{API}/me", json={"locale": "en", field: value})
    assert response.status_code == 422, response.json
    assert field in response.json["errors"]
    assert phone.get(f"{API}/me").json == before
    stored = factory.scalar(select(Participant).where(Participant.id == participant.id))
    assert (stored.site_id, stored.auth_epoch, stored.locale) == (
        participant.site_id,
        participant.auth_epoch,
        participant.locale,
    )


def test_me_patch_refuses_nested_and_disguised_fields(factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    for body in (
        {"site": {"code": "LZU1"}},
        {"Site": "LZU1"},
        {"locale": "en", "__class__": "x"},
        {"profile": {"arm": "control"}},
    ):
        response = phone.patch(f"{API}/me", json=body)
        assert response.status_code == 422, body
    me = phone.get(f"{API}/me").json
    assert (me["site"], me["arm"], me["status"], me["locale"]) == (
        "BJ302",
        "msc",
        "active",
        "zh-CN",
    )


def test_staff_patch_cannot_move_a_participant_to_another_site_or_arm(factory):
    participant = factory.participant()
    coordinator = factory.staff()
    client = factory.as_(coordinator)
    for field, value in [("site", "LZU1"), ("arm", "control"), ("study_code", "X-1"), ("id", 9)]:
        response = client.patch(f"{API}/participants/{participant.id}", json={field: value})
        assert response.status_code == 422, field
        assert field in response.json["errors"]
    read = client.get(f"{API}/participants/{participant.id}").json
    assert (read["site"], read["arm"], read["study_code"]) == (
        "BJ302",
        "msc",
        participant.study_code,
    )


# --- request size --------------------------------------------------------------------------


def test_big_bodies_get_413_on_authenticated_writes(app, factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    limit = app.config["MAX_CONTENT_LENGTH"]
    big = {"locale": "en", "note": "x" * limit}
    for path, method in ((f"{API}/me", "PATCH"), (f"{API}/me/diary-entries/sync", "POST")):
        response = phone.client.open(
            path, method=method, json=big, headers={"Authorization": f"Bearer {phone.token}"}
        )
        assert response.status_code == 413, path
        assert response.json["error"] == "payload_too_large"
    assert phone.get(f"{API}/me").json["locale"] == "zh-CN"


def test_a_big_body_without_a_length_gets_413(app, client):
    """Chunked uploads (no Content-Length) are cut off at the limit too."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = b'{"email":"a@b.org","password":"' + b"x" * (limit + 10) + b'"}'
    response = client.post(
        f"{API}/auth/staff/login",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"


# --- error bodies ----------------------------------------------------------------------------


def _assert_clean(response) -> None:  # type: ignore[no-untyped-def]
    body = response.get_data(as_text=True)
    assert response.is_json, body[:200]
    assert not INTERNALS.search(body), body
    assert set(response.json) >= {"code", "status", "message", "error"}


def test_error_bodies_carry_no_internals(app, client, factory):
    participant = factory.participant()
    phone = factory.as_(participant)
    coordinator = factory.as_(factory.staff())
    json_type = {"Content-Type": "application/json"}
    responses = [
        client.get(f"{API}/nothing"),  # 404
        client.delete(f"{API}/sites"),  # 405
        client.get(f"{API}/sites"),  # 401
        phone.get(f"{API}/sites"),  # 403
        client.post(f"{API}/auth/staff/login", data="{not json", headers=json_type),
        client.post(f"{API}/auth/staff/login", data=b"\xff\xfe\x00", headers=json_type),
        client.post(f"{API}/auth/staff/login", json=[1, 2]),
        client.post(f"{API}/auth/staff/login", json="a string"),
        client.post(f"{API}/auth/staff/login", json={"email": {"$ne": ""}, "password": 1}),
        client.post(f"{API}/auth/staff/login", data="email=a", content_type="text/plain"),
        client.post(f"{API}/auth/staff/login", data="[" * 5000 + "]" * 5000, headers=json_type),
        coordinator.get(f"{API}/participants/99999999999999999999"),
        coordinator.get(f"{API}/participants", query_string={"page": "-1", "page_size": "x"}),
        coordinator.post(f"{API}/participants", json={"site": "BJ302", "enrolled_on": "0"}),
        coordinator.patch(f"{API}/participants/{participant.id}", json={"status": "withdrawn"}),
        phone.patch(f"{API}/me", json={"timezone": "'; DROP TABLE participants; --"}),
        phone.patch(f"{API}/me", json={"locale": "en\x00"}),
        phone.post(f"{API}/me/diary-entries", json={"diary_date": "2026-13-45"}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, (response.status_code, response.json)
        _assert_clean(response)


@pytest.fixture
def bare_app(tmp_path) -> Flask:  # type: ignore[no-untyped-def]
    """An app of its own, so test-only routes can be added before its first request."""
    return create_app(
        {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/errors.sqlite3"}
    )


def test_database_errors_show_no_sql(bare_app, caplog):
    statement = "INSERT INTO staff_users (email) VALUES ('leak@example.org')"

    @bare_app.get("/integrity")
    def integrity():  # type: ignore[no-untyped-def]
        raise IntegrityError(statement, {"email": "leak"}, Exception("UNIQUE constraint failed"))

    @bare_app.get("/lost")
    def lost():  # type: ignore[no-untyped-def]
        raise OperationalError(statement, {}, Exception("server closed the connection"))

    @bare_app.get("/raw")
    def raw():  # type: ignore[no-untyped-def]
        with db.engine.connect() as conn:
            conn.execute(text("INSERT INTO sites (code) VALUES ('leak')"))

    @bare_app.get("/bad-sql")
    def bad_sql():  # type: ignore[no-untyped-def]
        with db.engine.connect() as conn:
            conn.execute(text("SELECT leak_column FROM sites"))

    client = bare_app.test_client()
    codes = []
    for path in ("/integrity", "/lost", "/raw", "/bad-sql"):
        response = client.get(path)
        codes.append(response.status_code)
        _assert_clean(response)
        assert "leak" not in response.get_data(as_text=True)
    # SQLite reports an unknown column as an OperationalError: a 503 like a lost database.
    assert codes[:3] == [500, 503, 500] and codes[3] in (500, 503)
    assert "INSERT INTO sites" in caplog.text  # operators still see the statement


# --- nothing secret in the logs ------------------------------------------------------------------


def test_secrets_never_reach_the_logs(app, client, factory, caplog, clock):
    caplog.set_level(logging.DEBUG)  # the root logger: every logger, SQL included
    for name in ("sqlalchemy.engine", "werkzeug", "flask_limiter", "api", "notifications"):
        caplog.set_level(logging.DEBUG, logger=name)
    staff = factory.staff("coordinator", sites=("BJ302",))
    secrets_seen: list[str] = [PASSWORD, app.config["JWT_SECRET"]]

    login = client.post(
        f"{API}/auth/staff/login", json={"email": staff.email, "password": PASSWORD}
    )
    assert login.status_code == 200
    wrong = client.post(
        f"{API}/auth/staff/login", json={"email": staff.email, "password": "hunter2-wrong-pw"}
    )
    assert wrong.status_code == 401
    secrets_seen += [login.json["access_token"], login.json["refresh_token"], "hunter2-wrong-pw"]
    staff_headers = {"Authorization": f"Bearer {login.json['access_token']}"}

    enrolment = client.post(
        f"{API}/participants",
        headers=staff_headers,
        json={
            "site": "BJ302",
            "arm": "msc",
            "enrolled_on": "2026-01-05",
            "timezone": "Asia/Shanghai",
            "locale": "zh-CN",
        },
    )
    assert enrolment.status_code == 201
    code = enrolment.json["activation_code"]
    secrets_seen += [code, code.replace("-", "")]
    bad_code = client.post(
        f"{API}/auth/participants/activate", json={"activation_code": "ABCD-EFGH-JKMN"}
    )
    assert bad_code.status_code == 401
    phone = client.post(f"{API}/auth/participants/activate", json={"activation_code": code})
    assert phone.status_code == 200
    secrets_seen += [phone.json["access_token"], phone.json["refresh_token"]]
    phone_headers = {"Authorization": f"Bearer {phone.json['access_token']}"}
    assert client.get(f"{API}/me", headers=phone_headers).status_code == 200
    assert (
        client.patch(f"{API}/me", headers=phone_headers, json={"locale": "en"}).status_code == 200
    )

    device_token = f"fcm-{uuid.uuid4().hex}:{'A' * 120}"
    device = client.post(
        f"{API}/me/devices",
        headers=phone_headers,
        json={"token": device_token, "platform": "android", "app_version": "1.0.0"},
    )
    assert device.status_code in (200, 201), device.json
    secrets_seen.append(device_token)

    rotated = client.post(
        f"{API}/auth/refresh", json={"refresh_token": phone.json["refresh_token"]}
    )
    assert rotated.status_code == 200
    secrets_seen += [rotated.json["access_token"], rotated.json["refresh_token"]]
    retried = client.post(
        f"{API}/auth/refresh", json={"refresh_token": phone.json["refresh_token"]}
    )
    assert retried.status_code == 200  # within the grace period: a lost answer retried
    secrets_seen += [retried.json["access_token"], retried.json["refresh_token"]]
    clock.set(clock() + app.config["REFRESH_REUSE_GRACE"] + timedelta(seconds=1))
    reuse = client.post(f"{API}/auth/refresh", json={"refresh_token": phone.json["refresh_token"]})
    assert reuse.status_code == 401
    reissue = client.post(
        f"{API}/participants/{enrolment.json['id']}/activation-code",
        headers=staff_headers,
        json={"reason": "lost phone"},
    )
    assert reissue.status_code == 201
    secrets_seen += [reissue.json["activation_code"]]
    logout = client.post(f"{API}/auth/logout", json={"refresh_token": login.json["refresh_token"]})
    assert logout.status_code == 204
    forged = client.get(f"{API}/sites", headers={"Authorization": "Bearer a.b.c"})
    assert forged.status_code == 401

    logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    # The capture really saw the statements that carried these secrets' hashes.
    assert "refresh_tokens" in logged and "activation_codes" in logged
    assert "INSERT INTO devices" in logged
    leaked = [s for s in secrets_seen if s in logged]
    assert leaked == []
    # JWTs of any kind (three base64url parts starting with a JSON header).
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+", logged)
