"""Reminders as the participant (what was sent to me) and the coordinators see them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select

from api.clock import utcnow
from api.errors import NotFound
from api.extensions import db
from api.models import Participant, Reminder, ReminderDelivery, ScheduleEvent
from notifications.rules import MIDNIGHT, local_instant
from notifications.texts import render


def sent_to(participant: Participant) -> Select[Reminder]:
    return (
        select(Reminder)
        .where(Reminder.participant_id == participant.id, Reminder.status == "sent")
        .order_by(Reminder.sent_at.desc(), Reminder.id.desc())
    )


def texts(reminder: Reminder, participant: Participant) -> tuple[str, str]:
    """The reminder's title and body in the participant's current locale."""
    subject = "diary"
    if reminder.schedule_event_id is not None:
        event = db.session.get(ScheduleEvent, reminder.schedule_event_id)
        subject = event.kind if event else reminder.kind
    sent = reminder.sent_at or reminder.due_at
    today = sent.astimezone(ZoneInfo(participant.timezone)).date()
    return render(subject, reminder.target_date, today, participant.locale)


def as_notification(reminder: Reminder, participant: Participant) -> dict[str, Any]:
    title, body = texts(reminder, participant)
    return {
        "id": reminder.id,
        "kind": reminder.kind,
        "target_date": reminder.target_date,
        "due_at": reminder.due_at,
        "sent_at": reminder.sent_at,
        "opened_at": reminder.opened_at,
        "title": title,
        "body": body,
    }


def mark_opened(participant: Participant, reminder_id: int) -> Reminder:
    """The app opened the notification: the first opening is kept; repeating is harmless."""
    reminder = db.session.get(Reminder, reminder_id)
    if reminder is None or reminder.participant_id != participant.id or reminder.status != "sent":
        raise NotFound("No such notification.", error="notification_not_found")
    if reminder.opened_at is None:
        reminder.opened_at = utcnow()
        reminder.updated_at = reminder.opened_at
    return reminder


def reminders_of(
    participant: Participant,
    first: date | None = None,
    last: date | None = None,
    status: str | None = None,
) -> Select[Reminder]:
    """Every reminder of the participant due between local days `first` and `last`."""
    zone = ZoneInfo(participant.timezone)
    stmt = select(Reminder).where(Reminder.participant_id == participant.id)
    if first is not None:
        stmt = stmt.where(Reminder.due_at >= local_instant(first, MIDNIGHT, zone))
    if last is not None:
        stmt = stmt.where(Reminder.due_at < local_instant(last + timedelta(days=1), MIDNIGHT, zone))
    if status is not None:
        stmt = stmt.where(Reminder.status == status)
    return stmt.order_by(Reminder.due_at, Reminder.id)


def with_deliveries(reminders: list[Reminder]) -> list[dict[str, Any]]:
    """Attach each reminder's messages (one query for the page)."""
    ids = [r.id for r in reminders]
    by_reminder: dict[int, list[ReminderDelivery]] = {i: [] for i in ids}
    if ids:
        for delivery in db.session.scalars(
            select(ReminderDelivery)
            .where(ReminderDelivery.reminder_id.in_(ids))
            .order_by(ReminderDelivery.id)
        ):
            by_reminder[delivery.reminder_id].append(delivery)
    return [{**_columns(r), "deliveries": by_reminder[r.id]} for r in reminders]


def _columns(reminder: Reminder) -> dict[str, Any]:
    return {c.key: getattr(reminder, c.key) for c in Reminder.__table__.columns}
