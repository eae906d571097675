"""What a participant will receive: the operator's `notifications preview`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from api.extensions import db
from api.models import Participant, Reminder, ScheduleEvent
from notifications import planning
from notifications.texts import render


def preview_lines(participant: Participant, now: datetime, days: int) -> list[str]:
    """One line per reminder due in the next `days` days, with its stored state and text."""
    lines = [
        f"{participant.study_code} ({participant.status}, {participant.timezone}, "
        f"{participant.locale}): reminders at {participant.reminder_time}, "
        f"diary at {participant.diary_reminder_time}"
    ]
    if not participant.is_active:
        return [*lines, "No reminders: the participant is not active."]
    stored = {
        (r.kind, r.target, r.offset_days): r
        for r in db.session.scalars(
            select(Reminder).where(Reminder.participant_id == participant.id)
        )
    }
    upcoming = planning.preview(participant, now, days)
    if not upcoming:
        return [*lines, f"Nothing in the next {days} days."]
    zone = ZoneInfo(participant.timezone)
    for item in upcoming:
        row = stored.get((item.kind, item.target, item.offset_days))
        local_due = item.due_at.astimezone(zone)
        subject = "diary" if item.kind == "diary" else _event_kind(item.schedule_event_id)
        title, body = render(subject, item.target_date, local_due.date(), participant.locale)
        state = f"{row.status} #{row.id}" if row else "not yet planned"
        lines.append(f"{local_due:%Y-%m-%d %H:%M %Z}  {item.kind:<8} [{state}]  {title} — {body}")
    return lines


def _event_kind(event_id: int | None) -> str:
    event = db.session.get(ScheduleEvent, event_id) if event_id else None
    return event.kind if event else "infusion"
