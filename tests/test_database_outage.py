"""The database goes away: 503 with Retry-After, nothing half-written, recovery without restart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, make_url, select

from api import create_app
from api.models import Participant
from tests.helpers import Factory
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_app(app: Flask, database_url: str, proxy: TcpProxy, clock) -> Iterator[Flask]:
    """A second app on the same (migrated) database, reached only through the proxy."""
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    proxied = create_app(
        {
            "TESTING": True,
            "APP_ENV": "test",
            "SQLALCHEMY_DATABASE_URI": url.render_as_string(hide_password=False),
            "SQLALCHEMY_ENGINE_OPTIONS": {
                "pool_pre_ping": True,
                "connect_args": {"connect_timeout": 2},
            },
            "AUTO_MIGRATE": False,
            "CLOCK": clock,
        }
    )
    yield proxied
    with proxied.app_context():
        from api.extensions import db

        db.engine.dispose()


def _enrol(client, token):
    return client.post(
        "/api/v1/participants",
        json={
            "site": "BJ302",
            "arm": "msc",
            "enrolled_on": "2026-01-05",
            "timezone": "Asia/Shanghai",
            "locale": "en",
        },
        headers={"Authorization": f"Bearer {token}"},
    )


def test_outage_answers_503_and_recovers_without_restart(
    proxied_app: Flask, proxy: TcpProxy, factory: Factory
):
    coordinator = factory.staff()
    token = factory.token(coordinator)
    client = proxied_app.test_client()
    assert client.get("/readyz").status_code == 200
    assert _enrol(client, token).status_code == 201

    proxy.cut()
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["error"] == "database_unavailable"
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    for _ in range(3):
        response = _enrol(client, token)
        assert response.status_code == 503, response.json
        assert response.headers["Retry-After"]
        assert response.json["error"] == "database_unavailable"
        assert set(response.json) >= {"code", "status", "message", "error"}
        text = response.get_data(as_text=True)
        assert "psycopg" not in text and "SELECT" not in text
    listing = client.get("/api/v1/participants", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 503

    proxy.restore()
    assert client.get("/readyz").status_code == 200
    assert _enrol(client, token).status_code == 201
    # Exactly the two enrolments that were answered 201 exist: nothing half-written.
    assert factory.scalar(select(func.count()).select_from(Participant)) == 2
