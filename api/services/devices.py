"""Phones of a participant: FCM registration tokens, registered idempotently."""

from __future__ import annotations

from sqlalchemy import Select, select

from api.audit import record_audit
from api.clock import utcnow
from api.errors import NotFound
from api.extensions import db
from api.models import Device, Participant
from api.services.upsert import insert_unless_taken


def register_device(
    participant: Participant,
    token: str,
    platform: str,
    app_version: str | None = None,
    locale: str | None = None,
) -> tuple[Device, bool]:
    """Register `token` for `participant`; returns the device and whether it is new.

    A token is one phone's app installation: registering it again updates it (and wakes
    it if it was dropped), and registering it for another participant moves it, so the
    first participant stops receiving that phone's reminders. Concurrent registrations of
    one token meet at the unique constraint (INSERT … ON CONFLICT DO NOTHING); the loser
    updates the winner's row.
    """
    now = utcnow()
    device = _locked_by_token(token)
    if device is None:
        row = {
            "participant_id": participant.id,
            "token": token,
            "platform": platform,
            "app_version": app_version,
            "locale": locale,
            "active": True,
            "created_at": now,
            "updated_at": now,
        }
        inserted = insert_unless_taken(Device, row, key=("token",))
        if inserted is not None:
            _audit(participant, inserted, "device.registered", None)
            return inserted, True
        device = _locked_by_token(token)  # a concurrent registration's row: update it
        if device is None:  # devices are never deleted
            raise RuntimeError("device insert skipped without a row holding its token")
    previous_owner = device.participant_id
    woken = not device.active
    device.participant_id = participant.id
    device.platform = platform
    device.app_version = app_version if app_version is not None else device.app_version
    device.locale = locale if locale is not None else device.locale
    device.active = True
    device.deactivated_at = None
    device.deactivated_reason = None
    device.updated_at = now
    if previous_owner != participant.id:
        _audit(participant, device, "device.moved", previous_owner)
    elif woken:
        _audit(participant, device, "device.registered", None)
    return device, False


def _locked_by_token(token: str) -> Device | None:
    return db.session.scalar(select(Device).where(Device.token == token).with_for_update())


def _audit(participant: Participant, device: Device, action: str, previous: int | None) -> None:
    db.session.flush()
    record_audit(
        ("participant", participant.id),
        action,
        "device",
        device.id,
        participant_id=participant.id,
        before={"participant_id": previous} if previous is not None else None,
        after={"participant_id": participant.id, "platform": device.platform},
    )


def own_device(participant: Participant, device_id: int) -> Device:
    device = db.session.get(Device, device_id)
    if device is None or device.participant_id != participant.id:
        raise NotFound("No such device.", error="device_not_found")
    return device


def drop_device(participant: Participant, device_id: int) -> Device:
    """Deactivate (never delete: past deliveries point at it); dropping twice is fine."""
    device = own_device(participant, device_id)
    if device.active:
        now = utcnow()
        device.active = False
        device.deactivated_at = now
        device.deactivated_reason = "removed_by_participant"
        device.updated_at = now
        record_audit(
            ("participant", participant.id),
            "device.removed",
            "device",
            device.id,
            participant_id=participant.id,
        )
    return device


def devices_of(participant: Participant) -> Select[Device]:
    return select(Device).where(Device.participant_id == participant.id).order_by(Device.id)
