"""What a participant will receive: the operator's `notifications preview`."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from api.extensions import db
from api.models import Participant, Reminder, ScheduleEvent
from notifications import planning
from notifications.rules import PlannedReminder
from notifications.texts import render_bundle


def preview_lines(participant: Participant, now: datetime, days: int) -> list[str]:
    """One line per message due in the next `days` days, with its reminders' stored states
    and its text; reminders due in the same minute show as the one message they become."""
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
    minutes: dict[datetime, list[PlannedReminder]] = defaultdict(list)
    for item in upcoming:
        minutes[item.due_at.replace(second=0, microsecond=0)].append(item)
    for due, items in sorted(minutes.items()):
        local_due = due.astimezone(zone)
        subjects = [
            ("diary" if i.kind == "diary" else _event_kind(i.schedule_event_id), i.target_date)
            for i in items
        ]
        title, body = render_bundle(subjects, local_due.date(), participant.locale)
        states = []
        for item in items:
            row = stored.get((item.kind, item.target, item.offset_days))
            states.append(f"{row.status} #{row.id}" if row else "not yet planned")
        kinds = "+".join(i.kind for i in items)
        lines.append(
            f"{local_due:%Y-%m-%d %H:%M %Z}  {kinds:<8} [{', '.join(states)}]  {title} — {body}"
        )
    return lines


def _event_kind(event_id: int | None) -> str:
    event = db.session.get(ScheduleEvent, event_id) if event_id else None
    return event.kind if event else "infusion"
