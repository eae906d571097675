"""Re-planning reminders as a diff against the stored rows.

The reminder's identity is the unique key (participant, kind, target, offset): planning
twice inserts nothing twice (``ON CONFLICT DO NOTHING``), a moved event is a new target,
and rows already sent, failed or expired are never touched. Each pass:

1. expires planned rows whose use has passed (`expire_stale`): the event day began, the
   diary day ended, or a nearer reminder of the same event is due (after an FCM outage
   the "3 days before" still waiting must not arrive beside the "1 day before");
2. cancels planned rows that lost their reason — participant no longer active, event
   moved, completed or cancelled, diary entry arrived, day excused (`cancel_invalid`);
   both are set-based statements, cheap enough to run every pass;
3. walks active participants in id-ordered chunks (memory flat in their number), computes
   the wanted reminders in their zone (`notifications.rules`) and inserts the missing
   ones, moves the due time of planned ones whose participant changed a reminder time,
   and revives cancelled ones wanted again (an event moved back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, text

from api.extensions import db
from api.models import Participant
from notifications import wanted
from notifications.rules import PlannedReminder
from notifications.settings import PlanSettings
from notifications.tidying import (
    CANCEL_REASONS,
    cancel_invalid,
    expire_stale,
    still_wanted,
    superseded,
)
from notifications.wanted import participant_chunks, plan_chunk

__all__ = [
    "CANCEL_REASONS",
    "PlanResult",
    "PlanSettings",
    "cancel_invalid",
    "expire_stale",
    "participant_chunks",
    "plan",
    "plan_chunk",
    "preview",
    "still_wanted",
    "superseded",
    "tidy",
]

log = logging.getLogger(__name__)

# pg_try_advisory_lock key: one planner at a time; the other workers only dispatch.
PLANNER_LOCK_KEY = 0x5EED_D1A2


@dataclass
class PlanResult:
    expired: int = 0
    cancelled: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    moved: int = 0
    revived: int = 0
    participants: int = 0
    skipped: bool = False

    def describe(self) -> str:
        if self.skipped:
            return "planning skipped (another worker holds the planner lock)"
        cancelled = sum(self.cancelled.values())
        return (
            f"planned {self.inserted} new, {self.moved} moved, {self.revived} revived, "
            f"{cancelled} cancelled, {self.expired} expired "
            f"({self.participants} active participants)"
        )


def _try_planner_lock() -> Connection | None:
    """PostgreSQL: one planner at a time across workers; SQLite runs one worker anyway.

    The advisory lock lives on a connection of its own, held for the whole pass, because
    the session commits chunk by chunk and may change connections in between.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return None
    conn = db.engine.connect()
    if conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": PLANNER_LOCK_KEY}):
        conn.commit()
        return conn
    conn.close()
    raise _PlannerBusy


class _PlannerBusy(Exception):
    pass


def _release_planner_lock(conn: Connection | None) -> None:
    if conn is not None:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PLANNER_LOCK_KEY})
        conn.commit()
        conn.close()


def tidy(now: datetime, settings: PlanSettings | None = None) -> PlanResult:
    """Steps 1 and 2 (expire, cancel), committed: each pass, by whichever worker is free.

    Claiming re-checks the same conditions, so a pass that skips this because another
    worker holds the planner lock sends nothing stale.
    """
    return _locked(now, settings or PlanSettings.current(), full=False)


def plan(
    now: datetime, settings: PlanSettings | None = None, *, chunk_size: int | None = None
) -> PlanResult:
    """A full planning pass (steps 1 to 3), committed chunk by chunk.

    Without `settings`, those of the app in context (`PlanSettings.current`).
    """
    return _locked(now, settings or PlanSettings.current(), full=True, chunk_size=chunk_size)


def _locked(
    now: datetime, settings: PlanSettings, *, full: bool, chunk_size: int | None = None
) -> PlanResult:
    try:
        lock = _try_planner_lock()
    except _PlannerBusy:
        return PlanResult(skipped=True)
    try:
        result = PlanResult(expired=expire_stale(now), cancelled=cancel_invalid(now))
        db.session.commit()
        if full:
            size = chunk_size or settings.chunk_size
            until = now + settings.plan_ahead
            for participants in participant_chunks(size):
                plan_chunk(participants, now, until, result, settings)
                db.session.commit()
            if result.inserted:
                # A nearer notice stored just now (the first pass after a long outage)
                # makes an older one still waiting stale: it expires in this pass.
                result.expired += expire_stale(now)
                db.session.commit()
        return result
    except BaseException:
        db.session.rollback()
        raise
    finally:
        _release_planner_lock(lock)


def preview(
    participant: Participant, now: datetime, days: int, settings: PlanSettings | None = None
) -> list[PlannedReminder]:
    """What the participant would be sent from `now` for `days` days (nothing is written)."""
    return wanted.preview(participant, now, days, settings or PlanSettings.current())
