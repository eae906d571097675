"""`flask --app wsgi notifications run|preview`: the reminder worker and what it will send."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from api.clock import utcnow
from api.extensions import db
from api.models import Participant, Reminder
from notifications import planning
from notifications.texts import render

notifications_cli = AppGroup("notifications", help="Push reminders: the worker and a preview.")


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 instant: {value!r}") from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("give the instant's UTC offset, e.g. 2026-12-01T20:00:00+08:00")
    return parsed.astimezone(UTC)


@notifications_cli.command("run")
@click.option("--once", is_flag=True, help="Run one pass (plan, send what is due) and exit.")
@click.option("--now", "now_text", metavar="ISO8601", help="Run one pass as if at this instant.")
@click.option("--interval", type=float, help="Seconds between passes (WORKER_INTERVAL_SECONDS).")
def run(once: bool, now_text: str | None, interval: float | None) -> None:
    """Plan and send reminders; also raises missed-diary alerts. SIGTERM stops cleanly."""
    from notifications.worker import Worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    now = _instant(now_text)
    worker = Worker(app, clock=(lambda: now) if now else None)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if once or now is not None:
        result = worker.run_pass(full_plan=True)
        click.echo(result.describe())
        return
    worker.run(interval)


@notifications_cli.command("preview")
@click.argument("study_code")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 400))
@click.option("--now", "now_text", metavar="ISO8601", help="Preview from this instant.")
def preview(study_code: str, days: int, now_text: str | None) -> None:
    """Show the reminders a participant will receive over the next DAYS days."""
    participant = db.session.scalar(select(Participant).where(Participant.study_code == study_code))
    if participant is None:
        raise click.ClickException(f"No participant {study_code!r}.")
    now = _instant(now_text) or utcnow()
    zone = ZoneInfo(participant.timezone)
    click.echo(
        f"{participant.study_code} ({participant.status}, {participant.timezone}, "
        f"{participant.locale}): reminders at {participant.reminder_time}, "
        f"diary at {participant.diary_reminder_time}"
    )
    if not participant.is_active:
        click.echo("No reminders: the participant is not active.")
        return
    stored = {
        (r.kind, r.target, r.offset_days): r
        for r in db.session.scalars(
            select(Reminder).where(Reminder.participant_id == participant.id)
        )
    }
    upcoming = planning.preview(participant, now, days)
    if not upcoming:
        click.echo(f"Nothing in the next {days} days.")
    for item in upcoming:
        row = stored.get((item.kind, item.target, item.offset_days))
        local_due = item.due_at.astimezone(zone)
        subject = "diary" if item.kind == "diary" else _event_kind(item.schedule_event_id)
        title, body = render(subject, item.target_date, local_due.date(), participant.locale)
        state = f"{row.status} #{row.id}" if row else "not yet planned"
        click.echo(f"{local_due:%Y-%m-%d %H:%M %Z}  {item.kind:<8} [{state}]  {title} — {body}")


def _event_kind(event_id: int | None) -> str:
    from api.models import ScheduleEvent

    event = db.session.get(ScheduleEvent, event_id) if event_id else None
    return event.kind if event else "infusion"
