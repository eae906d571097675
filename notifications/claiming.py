"""Leasing due reminders to a worker: claim a batch, renew its lease, release a held one."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Row, Table, and_, any_, bindparam, not_, or_, select, update
from sqlalchemy.dialects import postgresql

from api.extensions import db, dml_result
from api.models import Participant, Reminder
from notifications.tidying import still_wanted, superseded

# `__table__` is declared a FromClause; a mapped class's is its Table.
_REMINDERS = cast(Table, Reminder.__table__)


@dataclass(frozen=True)
class Claimed:
    id: int
    participant_id: int
    kind: str
    target_date: date
    schedule_event_id: int | None
    expires_at: datetime
    attempts: int
    due_at: datetime

    @property
    def bundle_key(self) -> tuple[int, datetime]:
        """Reminders of one participant due in the same minute go out as one message."""
        return (self.participant_id, self.due_at.replace(second=0, microsecond=0))


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def among(column: Any, ids: Iterable[int]) -> Any:
    """`column IN ids`; on PostgreSQL ``= ANY(:array)``, one parameter whatever the count,
    so the statement text stays the same from batch to batch (prepared once)."""
    values = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(Integer)))
    return column.in_(values)


def _due(now: datetime) -> Any:
    return or_(
        and_(
            Reminder.status == "planned",
            Reminder.due_at <= now,
            or_(Reminder.next_attempt_at.is_(None), Reminder.next_attempt_at <= now),
        ),
        and_(Reminder.status == "sending", Reminder.lease_expires_at < now),
    )


def claim(
    worker_id: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    participants: Iterable[int] | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due reminders to `worker_id` (the caller commits at once);
    with `participants`, only theirs (the rest of a bundle the limit cut)."""
    conditions = [_due(now), Reminder.expires_at > now, still_wanted(), not_(superseded(now))]
    if participants is not None:
        conditions.append(among(Reminder.participant_id, participants))
    candidates = (
        select(Reminder.id)
        .where(*conditions)
        .order_by(Reminder.due_at, Reminder.participant_id, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Reminder)
    )
    # SQLAlchemy types seven returned columns exactly; the eighth would be `Any, ...`.
    rows: Sequence[Row[int, int, str, date, int | None, datetime, int, datetime]]
    rows = db.session.execute(
        update(Reminder)
        .where(Reminder.id.in_(candidates.scalar_subquery()))
        .values(
            status="sending",
            lease_owner=worker_id,
            lease_expires_at=now + lease,
            attempts=Reminder.attempts + 1,
            updated_at=now,
        )
        .returning(
            Reminder.id,
            Reminder.participant_id,
            Reminder.kind,
            Reminder.target_date,
            Reminder.schedule_event_id,
            Reminder.expires_at,
            Reminder.attempts,
            Reminder.due_at,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [Claimed(*row) for row in rows]


def claim_bundles(worker_id: str, now: datetime, limit: int, lease: timedelta) -> list[Claimed]:
    """`claim`, then the due reminders of the batch's last participant that the limit left
    out, so that a bundle is never split between two batches."""
    claimed = claim(worker_id, now, limit, lease)
    if len(claimed) < limit:
        return claimed
    last = max(claimed, key=lambda c: (c.due_at, c.participant_id, c.id)).participant_id
    return claimed + claim(worker_id, now, limit, lease, participants=[last])


def renew(worker_id: str, ids: list[int], now: datetime, lease: timedelta) -> set[int]:
    """Extend the lease of reminders this worker still holds; returns their ids (the
    others lapsed and may be another worker's now). The caller commits."""
    if not ids:
        return set()
    return set(
        db.session.scalars(
            update(_REMINDERS)
            .where(
                among(_REMINDERS.c.id, ids),
                _REMINDERS.c.lease_owner == worker_id,
                _REMINDERS.c.status == "sending",
            )
            .values(lease_expires_at=now + lease)
            .returning(_REMINDERS.c.id)
        )
    )


def zones_of(claimed: list[Claimed]) -> dict[int, str]:
    """Each claimed reminder's participant's time zone (quiet hours are local)."""
    ids = {c.participant_id for c in claimed}
    return dict(
        db.session.execute(
            select(Participant.id, Participant.timezone).where(among(Participant.id, ids))
        ).all()
    )


# The row `rid` while still being sent under `owner`'s lease: the condition of every write
# that ends a claim (executemany parameters `rid` and `owner`).
STILL_HELD = and_(
    _REMINDERS.c.id == bindparam("rid"),
    _REMINDERS.c.lease_owner == bindparam("owner"),
    _REMINDERS.c.status == "sending",
)

# Back to waiting (or expired) without a send: the claim's attempt is taken back and the
# last error, if any, kept. Executed with one parameter set per reminder.
_RELEASE = (
    update(_REMINDERS)
    .where(STILL_HELD)
    .values(
        status=bindparam("new_status"),
        next_attempt_at=bindparam("next_at"),
        attempts=_REMINDERS.c.attempts - 1,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)


def release(worker_id: str, held: list[tuple[Claimed, str, datetime | None]], now: datetime) -> int:
    """Give back claimed reminders that are not to be sent now, each with its new status
    and next attempt (the caller commits)."""
    if not held:
        return 0
    params = [
        {"rid": c.id, "owner": worker_id, "new_status": s, "next_at": n, "now": now}
        for c, s, n in held
    ]
    result = dml_result(db.session.execute(_RELEASE, params))
    return result.rowcount if result.rowcount >= 0 else len(params)
