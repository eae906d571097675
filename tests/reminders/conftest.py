"""Fixtures of the reminder tests: the fake FCM server and an FCM sender."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from api.clock import utcnow
from api.extensions import db
from api.models import Device, Participant
from tests.fake_fcm import FakeFcm


@pytest.fixture
def fake_fcm(tmp_path: Path) -> Iterator[FakeFcm]:
    with FakeFcm() as server:
        server.service_account = server.write_service_account(tmp_path / "service-account.json")
        yield server


@pytest.fixture
def fcm_config(app: Flask, fake_fcm: FakeFcm) -> dict[str, Any]:
    """The app's configuration pointed at the fake (service account + FCM_ENDPOINT)."""
    return {
        **app.config,
        "FCM_CREDENTIALS": str(fake_fcm.service_account),
        "FCM_ENDPOINT": fake_fcm.url,
        "FCM_TIMEOUT_SECONDS": 2,
    }


@pytest.fixture
def fcm_sender(fcm_config: dict[str, Any]) -> Iterator[Any]:
    import firebase_admin

    from notifications.sender import sender_from_config

    sender = sender_from_config(fcm_config)
    yield sender
    firebase_admin.delete_app(sender.app)


@pytest.fixture
def worker(app: Flask, fcm_sender: Any) -> Any:
    from notifications.worker import Worker

    return Worker(app, sender=fcm_sender, worker_id="test-worker")


def add_device(app: Flask, participant: Participant, token: str, platform: str = "android") -> int:
    with app.app_context():
        now = utcnow()
        device = Device(
            participant_id=participant.id,
            token=token,
            platform=platform,
            app_version="1.0.0",
            active=True,
            created_at=now,
            updated_at=now,
        )
        db.session.add(device)
        db.session.commit()
        return device.id


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)
