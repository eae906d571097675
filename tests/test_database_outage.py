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


def test_phones_retrying_through_outages_store_every_entry_exactly_once(
    proxied_app: Flask, proxy: TcpProxy, factory: Factory
):
    """Phones resend every unacknowledged entry while the database comes and goes."""
    import random
    import threading
    import time
    import uuid
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from api.models import AuditEvent, DiaryEntry, DiaryEntryVersion

    today = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()
    phones = []
    for _ in range(8):
        participant = factory.participant(enrolled_on=today - timedelta(days=10))
        queue = [
            {
                "client_entry_id": str(uuid.uuid4()),
                "diary_date": (today - timedelta(days=back)).isoformat(),
                "abdominal_distension": random.randint(0, 4),
                "decreased_appetite": random.randint(0, 4),
                "debilitation": random.randint(0, 4),
                "leg_edema": random.randint(0, 4),
                "discomfort_grade": random.randint(0, 2),
                "recorded_at": datetime.now(UTC).isoformat(),
            }
            for back in range(3)
        ]
        phones.append((factory.token(participant), queue))

    outcomes: list[int] = []
    deadline = time.monotonic() + 60

    def phone(token: str, queue: list[dict]) -> None:
        client = proxied_app.test_client()
        pending = list(queue)
        while pending and time.monotonic() < deadline:
            entry = pending[0]
            response = client.post(
                "/api/v1/me/diary-entries",
                json=entry,
                headers={"Authorization": f"Bearer {token}"},
            )
            outcomes.append(response.status_code)
            if response.status_code in (200, 201):
                pending.pop(0)  # acknowledged: the phone forgets it
            else:
                assert response.status_code == 503, response.json
                time.sleep(0.01)

    def chaos() -> None:
        for _ in range(4):
            time.sleep(0.15)
            proxy.restore()
            time.sleep(0.05)
            proxy.cut()
        proxy.restore()

    proxy.cut()  # the phones start while the database is away
    threads = [threading.Thread(target=phone, args=p) for p in phones]
    threads.append(threading.Thread(target=chaos))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert 503 in outcomes, "the outage never hit a request; the test proved nothing"
    stored = {str(e.client_entry_id): e for e in factory.scalars(select(DiaryEntry))}
    sent = [entry for _, queue in phones for entry in queue]
    assert len(stored) == len(sent) == 24
    # Nothing half-written: one original version and one audit row per entry.
    versions = factory.scalars(select(DiaryEntryVersion.entry_id))
    assert sorted(versions) == sorted(e.id for e in stored.values())
    audited = factory.scalars(
        select(AuditEvent.entity_id).where(AuditEvent.action == "diary_entry.created")
    )
    assert sorted(audited) == sorted(e.id for e in stored.values())
    for entry in sent:
        row = stored[entry["client_entry_id"]]
        assert row.diary_date.isoformat() == entry["diary_date"]
        assert row.discomfort_grade == entry["discomfort_grade"]
        assert row.leg_edema == entry["leg_edema"]
