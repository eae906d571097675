"""Login limits an attacker cannot turn against the owner, behind proxies or not."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta

import pytest
from flask import Flask

from api import create_app
from api.errors import TooManyAttempts
from api.services import login_throttle
from tests.helpers import PASSWORD

LOGIN = "/api/v1/auth/staff/login"
ACTIVATE = "/api/v1/auth/participants/activate"


@pytest.fixture
def proxied(app: Flask, database_url: str, clock) -> Flask:  # type: ignore[no-untyped-def]
    """The service behind one reverse proxy (TRUSTED_PROXY_COUNT=1), on the same database."""
    return create_app(
        {
            "TESTING": True,
            "APP_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "AUTO_MIGRATE": False,
            "CLOCK": clock,
            "TRUSTED_PROXY_COUNT": 1,
        }
    )


def attempt(client, email: str, password: str, forwarded_for: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(LOGIN, json={"email": email, "password": password}, headers=headers)


def test_30_wrong_passwords_from_one_client_do_not_stop_the_owner_elsewhere(proxied, factory):
    staff = factory.staff()
    client = proxied.test_client()  # every request reaches the app from the proxy's address
    codes = [attempt(client, staff.email, "wrong", "203.0.113.66").status_code for _ in range(30)]
    assert codes == [401] * 5 + [429] * 25
    # The attacker's client is refused even the right password…
    assert attempt(client, staff.email, PASSWORD, "203.0.113.66").status_code == 429
    # …while the owner, from another client through the same proxy, signs in at once.
    owner = attempt(client, staff.email, PASSWORD, "198.51.100.20")
    assert owner.status_code == 200
    assert owner.json["access_token"]


def test_one_client_guessing_many_accounts_is_stopped_per_client(proxied, factory):
    staff = factory.staff()
    client = proxied.test_client()
    for n in range(30):
        assert attempt(client, f"guess{n}@example.org", "x", "203.0.113.66").status_code == 401
    refused = attempt(client, staff.email, PASSWORD, "203.0.113.66")
    assert refused.status_code == 429
    assert refused.json["error"] == "too_many_attempts"
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 200


def test_a_client_cannot_prepend_its_way_past_the_proxy(proxied, factory):
    """The proxy appends the real address; only the right-most entry is believed."""
    staff = factory.staff()
    client = proxied.test_client()
    for n in range(5):
        forged = f"10.0.0.{n}, 203.0.113.66"
        assert attempt(client, staff.email, "wrong", forged).status_code == 401
    assert attempt(client, staff.email, "wrong", "10.9.9.9, 203.0.113.66").status_code == 429


def test_spoofed_forwarded_for_without_a_trusted_proxy_changes_nothing(app, client, factory):
    assert app.config["TRUSTED_PROXY_COUNT"] == 0
    staff = factory.staff()
    for n in range(5):
        assert attempt(client, staff.email, "wrong", f"192.0.2.{n}").status_code == 401
    # A new forwarded address is not a new client: the peer address is.
    assert attempt(client, staff.email, PASSWORD, "192.0.2.200").status_code == 429
    # Nor can the header pretend to be someone else's client to lock them out: the real
    # client (another peer address) is untouched.
    other_peer = {"REMOTE_ADDR": "198.51.100.20"}
    response = client.post(
        LOGIN, json={"email": staff.email, "password": PASSWORD}, environ_base=other_peer
    )
    assert response.status_code == 200


def test_the_per_account_back_off_delays_and_then_lets_the_owner_in(proxied, factory, clock):
    """Many clients, one guess each: the account slows down, never locks for good."""
    after = proxied.config["LOGIN_ACCOUNT_BACKOFF_AFTER"]
    assert after == 10
    staff = factory.staff()
    client = proxied.test_client()
    now = clock.set("2026-12-01T08:00:00+00:00")
    for n in range(after):  # below the threshold: no delay at all
        assert attempt(client, staff.email, "wrong", f"203.0.113.{n}").status_code == 401
    waits = []
    for n in range(after, after + 5):
        refused = attempt(client, staff.email, "wrong", f"203.0.113.{n}")
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
        now = clock.set(now + timedelta(seconds=waits[-1]))
        assert attempt(client, staff.email, "wrong", f"203.0.113.{n}").status_code == 401
    assert waits == [1, 2, 4, 8, 16]  # doubling after each further failure
    # The owner, from a client of their own, waits once, then gets in with the password.
    owner = attempt(client, staff.email, PASSWORD, "198.51.100.20")
    assert owner.status_code == 429
    assert owner.json["error"] == "too_many_attempts"
    assert int(owner.headers["Retry-After"]) == 32
    clock.set(now + timedelta(seconds=32))
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 200
    # Success resets the account's count: the next mistake is just a 401.
    assert attempt(client, staff.email, "typo", "198.51.100.20").status_code == 401


def test_the_per_account_delay_is_capped(proxied, factory, clock):
    staff = factory.staff()
    client = proxied.test_client()
    now = clock.set("2026-12-01T08:00:00+00:00")
    for n in range(40):  # each from a client of its own, each after the wait
        response = attempt(client, staff.email, "wrong", f"203.0.{n}.1")
        if response.status_code == 429:
            now = clock.set(now + timedelta(seconds=int(response.headers["Retry-After"])))
            response = attempt(client, staff.email, "wrong", f"203.0.{n}.1")
        assert response.status_code == 401
    owner = attempt(client, staff.email, PASSWORD, "198.51.100.20")
    assert int(owner.headers["Retry-After"]) == proxied.config["LOGIN_ACCOUNT_MAX_DELAY_SECONDS"]
    clock.set(now + timedelta(seconds=300))
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 200


def test_a_client_the_owner_signed_in_from_skips_the_account_delay(proxied, factory, clock):
    """An attacker holding the account at its longest delay cannot hold the owner out."""
    staff = factory.staff()
    client = proxied.test_client()
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 200
    now = clock.set("2026-12-01T08:00:00+00:00")
    for n in range(20):
        response = attempt(client, staff.email, "wrong", f"203.0.{n}.1")
        if response.status_code == 429:
            now = clock.set(now + timedelta(seconds=int(response.headers["Retry-After"])))
            response = attempt(client, staff.email, "wrong", f"203.0.{n}.1")
        assert response.status_code == 401
    assert attempt(client, staff.email, PASSWORD, "198.51.100.99").status_code == 429  # new
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 200  # known
    # A known client still has its own limit: five wrong passwords there, then it waits.
    for _ in range(5):
        assert attempt(client, staff.email, "wrong", "198.51.100.20").status_code == 401
    assert attempt(client, staff.email, PASSWORD, "198.51.100.20").status_code == 429


def test_window_counts_end_with_their_window(client, factory, clock):
    staff = factory.staff()
    now = clock.set("2026-12-01T08:00:00+00:00")
    for _ in range(5):
        assert attempt(client, staff.email, "wrong").status_code == 401
    refused = attempt(client, staff.email, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 15 * 60
    clock.set(now + timedelta(minutes=15))
    assert attempt(client, staff.email, PASSWORD).status_code == 200


def test_the_service_functions_share_the_api_keys(app, client, factory):
    """The staff console calls the same functions, without HTTP: the counts are one."""
    staff = factory.staff()
    with app.app_context():
        for _ in range(5):
            login_throttle.check(staff.email, "127.0.0.1")
            login_throttle.record_failure(staff.email.upper(), "127.0.0.1")
        with pytest.raises(TooManyAttempts) as refused:
            login_throttle.check(f"  {staff.email} ", "127.0.0.1")
        assert refused.value.retry_after == 15 * 60
        login_throttle.check(staff.email, "198.51.100.20")  # another client: fine
    assert attempt(client, staff.email, PASSWORD).status_code == 429  # the test client's peer
    with app.app_context():
        login_throttle.record_success(staff.email, "127.0.0.1")
    assert attempt(client, staff.email, PASSWORD).status_code == 200


def test_unknown_accounts_count_like_known_ones(client):
    """No difference to probe: a made-up e-mail is throttled the same way."""
    email = f"nobody-{uuid.uuid4().hex[:6]}@example.org"
    codes = [attempt(client, email, "x").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]


def test_activation_keeps_its_per_client_limit_behind_the_proxy(proxied):
    client = proxied.test_client()

    def activate(code: str, forwarded_for: str) -> int:
        return client.post(
            ACTIVATE, json={"activation_code": code}, headers={"X-Forwarded-For": forwarded_for}
        ).status_code

    for n in range(30):
        assert activate(f"WRONG-CODE-{n:04d}", "203.0.113.66") == 401
    assert activate("WRONG-CODE-9999", "203.0.113.66") == 429
    assert activate("WRONG-CODE-9999", "198.51.100.20") == 401  # another client is not blocked


def test_unsupported_or_bad_limit_settings_refuse_to_start(tmp_path):
    from api.config import ConfigError

    base = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db", "AUTO_MIGRATE": False}
    with pytest.raises(ConfigError, match="RATELIMIT_STORAGE_URI"):
        create_app({**base, "RATELIMIT_STORAGE_URI": "memcached://127.0.0.1:11211"})
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT"):
        create_app({**base, "LOGIN_RATE_LIMIT": "five please"})
    with pytest.raises(ConfigError, match="TRUSTED_PROXY_COUNT"):
        create_app({**base, "TRUSTED_PROXY_COUNT": -1})


def test_failed_logins_from_many_processes_add_up_in_redis(database_url, clock):
    """Two server processes (two apps) sharing Redis: 3 + 2 failures make the 5."""
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    config = {
        "TESTING": True,
        "APP_ENV": "test",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "AUTO_MIGRATE": False,
        "CLOCK": clock,
        "RATELIMIT_STORAGE_URI": redis_url,
    }
    email = f"shared-{uuid.uuid4().hex}@example.org"
    rand = uuid.uuid4().int
    peer = {"REMOTE_ADDR": f"10.{rand % 250}.{rand // 250 % 250}.{rand // 62500 % 250}"}
    one, two = create_app(config), create_app(config)

    def fail(app: Flask) -> int:
        body = {"email": email, "password": "wrong"}
        return app.test_client().post(LOGIN, json=body, environ_base=peer).status_code

    assert [fail(one) for _ in range(3)] + [fail(two) for _ in range(2)] == [401] * 5
    refused = one.test_client().post(
        LOGIN, json={"email": email, "password": "wrong"}, environ_base=peer
    )
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    with two.app_context():
        login_throttle.record_success(email, peer["REMOTE_ADDR"])
    assert fail(one) == 401  # the success in the other process cleared the count
