"""Insert-or-fetch: concurrent writers of one unique key leave one row, and no writer fails."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import func, select, text

from api.extensions import db
from api.models import Alert, AuditEvent, Device, Participant
from api.services.alerts import raise_alert
from api.services.devices import register_device
from api.services.upsert import insert_unless_taken
from tests.helpers import Factory

WRITERS = 8
NOW = datetime(2026, 3, 1, 4, 0, tzinfo=UTC)


def _all_at_once(app: Flask, work: Callable[[], Any]) -> list[Any]:
    """Run `work` in WRITERS threads released together, each in its own app context and
    transaction (committed); what each returned, or the exception it raised."""
    barrier = threading.Barrier(WRITERS)
    results: list[Any] = []

    def run() -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(work())
                db.session.commit()
            except Exception as exc:  # reported to the test, which then fails
                results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_eight_writers_raising_one_alert_make_one_row(app: Flask, factory: Factory):
    participant = factory.participant()

    def work() -> int | None:
        alert = raise_alert(
            db.session.get(Participant, participant.id),
            "missed_diary",
            "race:1",
            NOW,
            details={"run_start": "2026-02-25", "days_missed": 4},
        )
        return None if alert is None else alert.id

    results = _all_at_once(app, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    raised = [r for r in results if r is not None]
    assert len(raised) == 1, results
    [alert] = factory.scalars(select(Alert).where(Alert.dedupe_key == "race:1"))
    assert alert.id == raised[0]
    assert alert.status == "open" and alert.details == {"run_start": "2026-02-25", "days_missed": 4}


def test_eight_registrations_of_one_token_make_one_device(app: Flask, factory: Factory):
    participant = factory.participant()

    def work() -> tuple[int, bool]:
        device, created = register_device(
            db.session.get(Participant, participant.id), "race-token", "android", "1.0.0"
        )
        return device.id, created

    results = _all_at_once(app, work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(created for _, created in results) == [False] * (WRITERS - 1) + [True]
    assert len({device_id for device_id, _ in results}) == 1
    assert factory.scalar(select(func.count()).select_from(Device)) == 1
    registered = select(func.count()).where(AuditEvent.action == "device.registered")
    assert factory.scalar(registered) == 1


def test_a_taken_key_leaves_the_callers_transaction_usable(app: Flask, factory: Factory):
    """A skipped insert is no error: the caller's other writes of the transaction stay."""
    participant = factory.participant()
    with app.app_context():
        owner = db.session.get(Participant, participant.id)
        assert raise_alert(owner, "missed_diary", "taken", NOW) is not None
        owner.locale = "en"
        assert raise_alert(owner, "missed_diary", "taken", NOW) is None
        db.session.commit()
    assert (
        factory.scalar(select(Participant.locale).where(Participant.id == participant.id)) == "en"
    )
    assert factory.scalar(select(func.count()).select_from(Alert)) == 1


def test_an_alert_without_details_is_stored_as_the_orm_stored_it(app: Flask, factory: Factory):
    """`details` None is the JSON null (the JSON type's default), as a flushed Alert was."""
    participant = factory.participant()
    with app.app_context():
        raise_alert(db.session.get(Participant, participant.id), "missed_diary", "bare", NOW)
        db.session.commit()
        stored = db.session.execute(text("SELECT details IS NULL FROM alerts")).scalar()
    assert not stored


def test_without_a_key_any_unique_constraint_keeps_the_twin_out(app: Flask, factory: Factory):
    participant = factory.participant()
    with app.app_context():
        owner = db.session.get(Participant, participant.id)
        row = {
            "participant_id": owner.id,
            "site_id": owner.site_id,
            "kind": "missed_diary",
            "dedupe_key": "keyless",
            "created_at": NOW,
        }
        first = insert_unless_taken(Alert, row)
        assert first is not None and first.status == "open"  # the column default applies
        assert insert_unless_taken(Alert, row) is None
        db.session.commit()
    assert factory.scalar(select(func.count()).select_from(Alert)) == 1
