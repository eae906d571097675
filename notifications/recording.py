"""Recording a sent batch: each message's delivery row, each reminder's next state."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, update

from api.extensions import db, dml_result
from api.models import Device, Reminder, ReminderDelivery
from notifications.bulk import insert_rows
from notifications.claiming import STILL_HELD, Claimed, among
from notifications.quiet import quiet_until
from notifications.rules import ReminderRules
from notifications.sender import Outcome, Outgoing

# `__table__` is declared a FromClause; a mapped class's is its Table.
_REMINDERS = cast(Table, Reminder.__table__)

_DELIVERIES = cast(Table, ReminderDelivery.__table__)


@dataclass(frozen=True)
class RetryPolicy:
    """When a transient failure is tried again: back-off, and never inside quiet hours."""

    base: float
    cap: float
    rules: ReminderRules | None = None


def backoff(attempts: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential back-off (base · 2^(attempts-1), capped), never sooner than Retry-After."""
    factor: int = 2 ** max(0, attempts - 1)  # typeshed: int ** int may be a float
    delay = min(cap, base * factor)
    return max(delay, retry_after or 0.0)


def _describe(outcome: Outcome) -> str:
    return f"{outcome.error_code}: {outcome.error}" if outcome.error else str(outcome.error_code)


def _retry_at(
    reminder: Claimed,
    transient: list[Outcome],
    now: datetime,
    policy: RetryPolicy,
    zone: str | None,
) -> datetime:
    """The back-off's instant, moved out of the participant's quiet hours."""
    retry_after = max((o.retry_after or 0.0) for o in transient)
    delay = backoff(reminder.attempts, policy.base, policy.cap, retry_after)
    next_at = now + timedelta(seconds=delay)
    if policy.rules is not None and zone is not None:
        next_at = quiet_until(next_at, zone, policy.rules) or next_at
    return next_at


def decide(
    reminder: Claimed,
    outcomes: list[Outcome],
    now: datetime,
    policy: RetryPolicy,
    zone: str | None = None,
) -> dict[str, Any]:
    """The reminder's next state from its messages' outcomes."""
    if any(o.ok for o in outcomes):
        return {"status": "sent", "sent_at": now, "last_error": None, "next_attempt_at": None}
    transient = [o for o in outcomes if o.transient]
    if transient:
        next_at = _retry_at(reminder, transient, now, policy, zone)
        error = _describe(transient[0])
        if next_at >= reminder.expires_at:
            return {"status": "expired", "last_error": error, "next_attempt_at": None}
        return {"status": "planned", "last_error": error, "next_attempt_at": next_at}
    permanent = [o for o in outcomes if not o.deactivates_token]
    if permanent:
        return {"status": "failed", "last_error": _describe(permanent[0]), "next_attempt_at": None}
    return {
        "status": "undeliverable",
        "last_error": "every device token was rejected: " + _describe(outcomes[0]),
        "next_attempt_at": None,
    }


# A Core statement, executed with one parameter set per reminder (executemany).
_FINISH = (
    update(_REMINDERS)
    .where(STILL_HELD)
    .values(
        status=bindparam("new_status"),
        sent_at=bindparam("sent"),
        last_error=bindparam("error"),
        next_attempt_at=bindparam("next_at"),
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("now"),
    )
)


@dataclass
class _Tally:
    """The batch's outcomes regrouped per reminder, and what they imply for devices."""

    by_reminder: dict[int, list[Outcome]]
    bundle_attempts: dict[int, int]
    deliveries: list[dict[str, Any]]
    dead_tokens: dict[int, str]


def _tally(
    claimed: list[Claimed], messages: list[Outgoing], outcomes: list[Outcome], now: datetime
) -> _Tally:
    tally = _Tally(defaultdict(list), {}, [], {})
    attempts = {c.id: c.attempts for c in claimed}
    for message, outcome in zip(messages, outcomes, strict=True):
        # A bundle retries as one: its back-off counts from its most-tried reminder.
        most = max(attempts[rid] for rid in message.covers)
        for rid in message.covers:
            tally.bundle_attempts[rid] = most
            tally.by_reminder[rid].append(outcome)
            tally.deliveries.append(
                {
                    "reminder_id": rid,
                    "device_id": message.device_id,
                    "attempt": attempts[rid],
                    "at": now,
                    "message_id": outcome.message_id,
                    "error_code": outcome.error_code,
                    "error": outcome.error,
                }
            )
        if outcome.deactivates_token:
            tally.dead_tokens[message.device_id] = str(outcome.error_code)
    return tally


def _deactivate(dead_tokens: dict[int, str], now: datetime) -> None:
    for device_id, reason in dead_tokens.items():
        db.session.execute(
            update(Device)
            .where(Device.id == device_id, Device.active.is_(True))
            .values(active=False, deactivated_at=now, deactivated_reason=reason, updated_at=now)
        )


_NO_DEVICE = {"status": "undeliverable", "last_error": "no active device", "next_attempt_at": None}


def _states(
    claimed: list[Claimed],
    tally: _Tally,
    no_device: set[int],
    now: datetime,
    policy: RetryPolicy,
    zones: dict[int, str],
) -> dict[int, dict[str, Any]]:
    states = {}
    for reminder in claimed:
        if reminder.id in no_device:
            states[reminder.id] = _NO_DEVICE
            continue
        paced = replace(
            reminder, attempts=tally.bundle_attempts.get(reminder.id, reminder.attempts)
        )
        zone = zones.get(reminder.participant_id)
        states[reminder.id] = decide(paced, tally.by_reminder[reminder.id], now, policy, zone)
    return states


def _store(worker_id: str, states: dict[int, dict[str, Any]], now: datetime) -> int:
    """Write the new states of the rows this worker still holds; how many it did."""
    sent_ids = [rid for rid, s in states.items() if s["status"] == "sent"]
    finishes = [
        {
            "rid": rid,
            "owner": worker_id,
            "new_status": s["status"],
            "sent": s.get("sent_at"),
            "error": s["last_error"],
            "next_at": s["next_attempt_at"],
            "now": now,
        }
        for rid, s in states.items()
        if s["status"] != "sent"
    ]
    recorded = 0
    if sent_ids:  # the common case, in one statement
        recorded += dml_result(
            db.session.execute(
                update(_REMINDERS)
                .where(
                    among(_REMINDERS.c.id, sent_ids),
                    _REMINDERS.c.lease_owner == worker_id,
                    _REMINDERS.c.status == "sending",
                )
                .values(
                    status="sent",
                    sent_at=now,
                    last_error=None,
                    next_attempt_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
        ).rowcount
    if finishes:
        result = dml_result(db.session.execute(_FINISH, finishes))
        recorded += result.rowcount if result.rowcount >= 0 else len(finishes)
    return recorded


def record(
    worker_id: str,
    claimed: list[Claimed],
    messages: list[Outgoing],
    outcomes: list[Outcome],
    no_device: set[int],
    now: datetime,
    policy: RetryPolicy,
    zones: dict[int, str] | None = None,
) -> Counter[str]:
    """Store every message's result and each reminder's new state, in one transaction.

    A reminder whose lease was taken over meanwhile is left to its new owner; its
    deliveries are still recorded, as facts.
    """
    tally = _tally(claimed, messages, outcomes, now)
    insert_rows(_DELIVERIES, tally.deliveries)
    _deactivate(tally.dead_tokens, now)
    states = _states(claimed, tally, no_device, now, policy, zones or {})
    counts: Counter[str] = Counter(
        "retrying" if s["status"] == "planned" else s["status"] for s in states.values()
    )
    recorded = _store(worker_id, states, now)
    if recorded < len(claimed):
        counts["lease_lost"] += len(claimed) - recorded
    db.session.commit()
    return counts
