"""Building the messages of claimed reminders: one per active device of each bundle."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from api.extensions import db
from api.models import Device, Participant, ScheduleEvent
from notifications.claiming import Claimed, among
from notifications.sender import Outgoing
from notifications.texts import render_bundle


def bundles(claimed: list[Claimed]) -> list[list[Claimed]]:
    """The claimed reminders grouped by participant and due minute, each by id."""
    groups: dict[tuple[int, datetime], list[Claimed]] = defaultdict(list)
    for c in sorted(claimed, key=lambda c: c.id):
        groups[c.bundle_key].append(c)
    return list(groups.values())


def _people(participant_ids: set[int]) -> dict[int, Any]:
    rows = db.session.execute(
        select(Participant.id, Participant.locale, Participant.timezone).where(
            among(Participant.id, participant_ids)
        )
    )
    return {row.id: row for row in rows}


def _event_kinds(claimed: list[Claimed]) -> dict[int, str]:
    event_ids = {c.schedule_event_id for c in claimed if c.schedule_event_id}
    rows = db.session.execute(
        select(ScheduleEvent.id, ScheduleEvent.kind).where(among(ScheduleEvent.id, event_ids))
    )
    return dict(rows.all())


def _devices(participant_ids: set[int]) -> dict[int, list[Any]]:
    devices: dict[int, list[Any]] = defaultdict(list)
    for row in db.session.execute(
        select(Device.id, Device.participant_id, Device.token, Device.platform)
        .where(among(Device.participant_id, participant_ids), Device.active.is_(True))
        .order_by(Device.id)
    ):
        devices[row.participant_id].append(row)
    return devices


def _subject(claimed: Claimed, kinds: dict[int, str]) -> str:
    """What a reminder's text is about: the diary, or its event's kind."""
    if claimed.kind == "diary" or claimed.schedule_event_id is None:
        return claimed.kind
    return kinds.get(claimed.schedule_event_id, claimed.kind)


def _bundle_messages(
    bundle: list[Claimed], person: Any, devices: list[Any], kinds: dict[int, str], now: datetime
) -> list[Outgoing]:
    items = [
        (
            _subject(c, kinds),
            c.target_date,
        )
        for c in bundle
    ]
    today = now.astimezone(ZoneInfo(person.timezone)).date()
    title, body = render_bundle(items, today, person.locale)
    first = bundle[0]
    ids = tuple(c.id for c in bundle) if len(bundle) > 1 else ()
    return [
        Outgoing(
            reminder_id=first.id,
            device_id=device.id,
            token=device.token,
            platform=device.platform,
            kind=first.kind,
            locale=person.locale,
            title=title,
            body=body,
            target_date=min(c.target_date for c in bundle).isoformat(),
            expires_at=max(c.expires_at for c in bundle),
            reminder_ids=ids,
        )
        for device in devices
    ]


def build_messages(claimed: list[Claimed], now: datetime) -> tuple[list[Outgoing], set[int]]:
    """One message per active device of each bundle; and the reminders with no device."""
    participant_ids = {c.participant_id for c in claimed}
    people, kinds, devices = (
        _people(participant_ids),
        _event_kinds(claimed),
        _devices(participant_ids),
    )
    messages: list[Outgoing] = []
    no_device: set[int] = set()
    for bundle in bundles(claimed):
        pid = bundle[0].participant_id
        if not devices[pid]:
            no_device.update(c.id for c in bundle)
            continue
        messages += _bundle_messages(bundle, people[pid], devices[pid], kinds, now)
    return messages, no_device
