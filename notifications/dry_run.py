"""What a worker pass would do at an instant, with nothing written and nothing sent.

The pass's own steps run (expire, cancel, plan, the missed-diary check) inside one
transaction that is rolled back, so the figures are the real ones; instead of claiming
and sending, the reminders that would then be due are listed. An operator can look at a
future `--now` without sending anyone a message or raising an alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import or_, select

from api.extensions import db
from api.models import Participant, Reminder
from notifications import planning
from notifications.quiet import hold
from notifications.rules import ReminderRules
from notifications.settings import PlanSettings


@dataclass
class DryRun:
    plan: planning.PlanResult
    alerts: int
    due: list[str] = field(default_factory=list)

    held: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"dry run (nothing written or sent): {self.plan.describe()}"]
        lines.append(f"{len(self.due)} reminder(s) would be sent:")
        lines.extend(f"  {line}" for line in self.due)
        if self.held:
            lines.append(f"{len(self.held)} due reminder(s) quiet hours would hold back:")
            lines.extend(f"  {line}" for line in self.held)
        lines.append(f"{self.alerts} missed-diary alert(s) would be raised")
        return lines


def _due_lines(now: datetime, rules: ReminderRules) -> tuple[list[str], list[str]]:
    """The due reminders a pass at `now` would send, and those quiet hours would hold
    back (to the morning, or for good when the morning comes after their expiry), each
    as a line; the worker decides the same way at send time (`notifications.quiet`)."""
    rows = db.session.execute(
        select(
            Reminder.id,
            Reminder.kind,
            Reminder.due_at,
            Reminder.expires_at,
            Participant.study_code,
            Participant.timezone,
        )
        .join(Participant, Participant.id == Reminder.participant_id)
        .where(
            Reminder.status == "planned",
            Reminder.due_at <= now,
            or_(Reminder.expires_at.is_(None), Reminder.expires_at > now),
        )
        .order_by(Reminder.due_at, Reminder.id)
    )
    send: list[str] = []
    held: list[str] = []
    for rid, kind, due, expires_at, code, timezone in rows:
        line = f"#{rid} {code} {kind} due {due:%Y-%m-%dT%H:%MZ}"
        fate = hold(now, expires_at or datetime.max.replace(tzinfo=UTC), timezone, rules)
        if fate is None:
            send.append(line)
        elif fate[1] is None:
            held.append(f"{line}: would expire (quiet hours last past its expiry)")
        else:
            held.append(f"{line}: held until {fate[1]:%Y-%m-%dT%H:%MZ}")
    return send, held


def dry_run_pass(now: datetime, settings: PlanSettings | None = None) -> DryRun:
    """Run a pass's steps at `now` in a transaction that is always rolled back.

    Without `settings`, those of the app in context (`PlanSettings.current`).
    """
    from api.services.alerts import check_missed_diaries

    settings = settings or PlanSettings.current()
    try:
        result = planning.PlanResult(
            expired=planning.expire_stale(now), cancelled=planning.cancel_invalid(now)
        )
        until = now + settings.plan_ahead
        for participants in planning.participant_chunks(settings.chunk_size):
            planning.plan_chunk(participants, now, until, result, settings)
        if result.inserted:  # as a real pass does: a nearer notice just stored wins
            result.expired += planning.expire_stale(now)
        due, held = _due_lines(now, settings.rules)
        alerts = check_missed_diaries(now)
        return DryRun(result, alerts, due, held)
    finally:
        db.session.rollback()
