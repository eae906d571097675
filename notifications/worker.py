"""The reminder worker: plan, claim due reminders, send, record; and the compliance check.

Claiming is a lease. One statement marks a batch of due rows ``sending`` with this
worker's name and a lease expiry and commits; on PostgreSQL its inner ``SELECT … FOR
UPDATE SKIP LOCKED`` lets several workers, on one machine or many, take disjoint rows.
Results are written only while the lease is still this worker's (``lease_owner`` is
checked in the ``UPDATE``). A worker that dies mid-batch leaves its rows ``sending``; when
their lease runs out another worker claims them again. Delivery is therefore at least
once: a crash can repeat only the messages that were in flight at that moment (sent to FCM
but not yet recorded), and the collapse key equal to the reminder id (a bundle's smallest)
makes the phone show such a repeat once. SQLite runs one worker (it has no row locks to skip).

A worker renews the lease of the batches it holds every half lease while FCM is still
answering (`_await`), so a slow send is never mistaken for a dead worker.

Reminders of one participant due in the same minute (an infusion and a lab visit on the
same day) are one message per device, a *bundle*: each reminder keeps its own row, state
and delivery rows; the message's collapse key is the bundle's smallest reminder id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import Integer, and_, any_, bindparam, not_, or_, select, update
from sqlalchemy.dialects import postgresql

from api.clock import utcnow
from api.extensions import db
from api.models import Device, Participant, Reminder, ReminderDelivery, ScheduleEvent
from notifications import planning
from notifications.bulk import insert_rows
from notifications.metrics import observe_outcomes, observe_pass
from notifications.sender import Outcome, Outgoing, Sender, sender_from_config
from notifications.texts import render_bundle

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Claimed:
    id: int
    participant_id: int
    kind: str
    target_date: Any
    schedule_event_id: int | None
    expires_at: datetime
    attempts: int
    due_at: datetime

    @property
    def bundle_key(self) -> tuple[int, datetime]:
        """Reminders of one participant due in the same minute go out as one message."""
        return (self.participant_id, self.due_at.replace(second=0, microsecond=0))


@dataclass
class PassResult:
    plan: planning.PlanResult | None = None
    outcomes: Counter = field(default_factory=Counter)
    alerts: int = 0

    def describe(self) -> str:
        parts = [self.plan.describe()] if self.plan else []
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items()))
        parts.append(f"dispatched: {counts or 'nothing due'}")
        parts.append(f"{self.alerts} missed-diary alerts")
        return "; ".join(parts)


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


# --- claiming -------------------------------------------------------------------------------


def claim(
    worker_id: str,
    now: datetime,
    limit: int,
    lease: timedelta,
    participants: Iterable[int] | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due reminders to `worker_id` (the caller commits at once);
    with `participants`, only theirs (the rest of a bundle the limit cut)."""
    due = or_(
        and_(
            Reminder.status == "planned",
            Reminder.due_at <= now,
            or_(Reminder.next_attempt_at.is_(None), Reminder.next_attempt_at <= now),
        ),
        and_(Reminder.status == "sending", Reminder.lease_expires_at < now),
    )
    conditions = [due, Reminder.expires_at > now, planning.still_wanted()]
    conditions.append(not_(planning.superseded(now)))
    if participants is not None:
        conditions.append(_among(Reminder.participant_id, participants))
    candidates = (
        select(Reminder.id)
        .where(*conditions)
        .order_by(Reminder.due_at, Reminder.participant_id, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Reminder)
    )
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


def renew(worker_id: str, ids: list[int], now: datetime, lease: timedelta) -> int:
    """Extend the lease of reminders this worker still holds (the caller commits)."""
    if not ids:
        return 0
    result = db.session.execute(
        update(_REMINDERS)
        .where(
            _among(_REMINDERS.c.id, ids),
            _REMINDERS.c.lease_owner == worker_id,
            _REMINDERS.c.status == "sending",
        )
        .values(lease_expires_at=now + lease)
    )
    return result.rowcount or 0


def _among(column: Any, ids: Iterable[int]) -> Any:
    """`column IN ids`; on PostgreSQL ``= ANY(:array)``, one parameter whatever the count,
    so the statement text stays the same from batch to batch (prepared once)."""
    values = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(Integer)))
    return column.in_(values)


# --- building messages ----------------------------------------------------------------------


def bundles(claimed: list[Claimed]) -> list[list[Claimed]]:
    """The claimed reminders grouped by participant and due minute, each by id."""
    groups: dict[tuple[int, datetime], list[Claimed]] = defaultdict(list)
    for c in sorted(claimed, key=lambda c: c.id):
        groups[c.bundle_key].append(c)
    return list(groups.values())


def build_messages(claimed: list[Claimed], now: datetime) -> tuple[list[Outgoing], set[int]]:
    """One message per active device of each bundle; and the reminders with no device."""
    participant_ids = {c.participant_id for c in claimed}
    people = {
        row.id: row
        for row in db.session.execute(
            select(Participant.id, Participant.locale, Participant.timezone).where(
                _among(Participant.id, participant_ids)
            )
        )
    }
    event_ids = {c.schedule_event_id for c in claimed if c.schedule_event_id}
    event_kinds = dict(
        db.session.execute(
            select(ScheduleEvent.id, ScheduleEvent.kind).where(_among(ScheduleEvent.id, event_ids))
        ).all()
    )
    devices: dict[int, list[Any]] = defaultdict(list)
    for row in db.session.execute(
        select(Device.id, Device.participant_id, Device.token, Device.platform)
        .where(_among(Device.participant_id, participant_ids), Device.active.is_(True))
        .order_by(Device.id)
    ):
        devices[row.participant_id].append(row)
    messages, no_device = [], set()
    for bundle in bundles(claimed):
        first = bundle[0]
        person = people[first.participant_id]
        if not devices[first.participant_id]:
            no_device.update(c.id for c in bundle)
            continue
        items = [
            (
                "diary" if c.kind == "diary" else event_kinds.get(c.schedule_event_id, c.kind),
                c.target_date,
            )
            for c in bundle
        ]
        today = now.astimezone(ZoneInfo(person.timezone)).date()
        title, body = render_bundle(items, today, person.locale)
        ids = tuple(c.id for c in bundle) if len(bundle) > 1 else ()
        for device in devices[first.participant_id]:
            messages.append(
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
            )
    return messages, no_device


# --- recording ------------------------------------------------------------------------------


def backoff(attempts: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential back-off (base · 2^(attempts-1), capped), never sooner than Retry-After."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return max(delay, retry_after or 0.0)


def _describe(outcome: Outcome) -> str:
    return f"{outcome.error_code}: {outcome.error}" if outcome.error else str(outcome.error_code)


def decide(
    reminder: Claimed, outcomes: list[Outcome], now: datetime, base: float, cap: float
) -> dict[str, Any]:
    """The reminder's next state from its messages' outcomes."""
    if any(o.ok for o in outcomes):
        return {"status": "sent", "sent_at": now, "last_error": None, "next_attempt_at": None}
    transient = [o for o in outcomes if o.transient]
    if transient:
        retry_after = max((o.retry_after or 0.0) for o in transient)
        delay = backoff(reminder.attempts, base, cap, retry_after)
        next_at = now + timedelta(seconds=delay)
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


_REMINDERS = Reminder.__table__
# A Core statement, executed with one parameter set per reminder (executemany).
_FINISH = (
    update(_REMINDERS)
    .where(
        _REMINDERS.c.id == bindparam("rid"),
        _REMINDERS.c.lease_owner == bindparam("owner"),
        _REMINDERS.c.status == "sending",
    )
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


def record(
    worker_id: str,
    claimed: list[Claimed],
    messages: list[Outgoing],
    outcomes: list[Outcome],
    no_device: set[int],
    now: datetime,
    retry_base: float,
    retry_cap: float,
) -> Counter:
    """Store every message's result and each reminder's new state, in one transaction.

    A reminder whose lease was taken over meanwhile is left to its new owner; its
    deliveries are still recorded, as facts.
    """
    by_reminder: dict[int, list[Outcome]] = defaultdict(list)
    deliveries = []
    dead_tokens: dict[int, str] = {}
    attempts = {c.id: c.attempts for c in claimed}
    # A bundle retries as one: its back-off counts from its most-tried reminder.
    bundle_attempts: dict[int, int] = {}
    for message, outcome in zip(messages, outcomes, strict=True):
        most = max(attempts[rid] for rid in message.covers)
        for rid in message.covers:
            bundle_attempts[rid] = most
            by_reminder[rid].append(outcome)
            deliveries.append(
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
            dead_tokens[message.device_id] = str(outcome.error_code)
    insert_rows(ReminderDelivery.__table__, deliveries)
    for device_id, reason in dead_tokens.items():
        db.session.execute(
            update(Device)
            .where(Device.id == device_id, Device.active.is_(True))
            .values(active=False, deactivated_at=now, deactivated_reason=reason, updated_at=now)
        )
    counts: Counter = Counter()
    finishes, sent_ids = [], []
    for reminder in claimed:
        if reminder.id in no_device:
            state = {
                "status": "undeliverable",
                "last_error": "no active device",
                "next_attempt_at": None,
            }
        else:
            paced = replace(reminder, attempts=bundle_attempts.get(reminder.id, reminder.attempts))
            state = decide(paced, by_reminder[reminder.id], now, retry_base, retry_cap)
        counts["retrying" if state["status"] == "planned" else state["status"]] += 1
        if state["status"] == "sent":
            sent_ids.append(reminder.id)
            continue
        finishes.append(
            {
                "rid": reminder.id,
                "owner": worker_id,
                "new_status": state["status"],
                "sent": state.get("sent_at"),
                "error": state["last_error"],
                "next_at": state["next_attempt_at"],
                "now": now,
            }
        )
    recorded = 0
    if sent_ids:  # the common case, in one statement
        recorded += db.session.execute(
            update(_REMINDERS)
            .where(
                _among(_REMINDERS.c.id, sent_ids),
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
        ).rowcount
    if finishes:
        result = db.session.execute(_FINISH, finishes)
        recorded += result.rowcount if result.rowcount >= 0 else len(finishes)
    if recorded < len(claimed):
        counts["lease_lost"] += len(claimed) - recorded
    db.session.commit()
    return counts


# --- the worker -----------------------------------------------------------------------------


@dataclass
class _Batch:
    """Claimed reminders and their messages, on their way through the sender."""

    claimed: list[Claimed]
    messages: list[Outgoing]
    no_device: set[int]
    now: datetime
    outcomes: list[Outcome] | None = None
    future: Future | None = None

    def start(self, pool: ThreadPoolExecutor, sender: Sender) -> None:
        if self.messages:
            self.future = pool.submit(sender.send, self.messages, self.now)
        else:
            self.outcomes = []

    def result(self, timeout: float | None = None) -> list[Outcome]:
        """FCM's answers; `TimeoutError` if they have not come within `timeout` seconds."""
        if self.outcomes is None:
            assert self.future is not None
            try:
                self.outcomes = self.future.result(timeout=timeout)
            except FutureTimeout as exc:
                raise TimeoutError from exc
        return self.outcomes

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.claimed]


class Worker:
    """One reminder worker process (`flask --app wsgi notifications run`)."""

    def __init__(
        self,
        app: Flask,
        sender: Sender | None = None,
        worker_id: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.app = app
        self.sender = sender or sender_from_config(app.config)
        self.id = worker_id or default_worker_id()
        self.clock = clock or utcnow
        self.stopping = threading.Event()
        self._planned_at: float | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.app.config

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, record it, and leave (SIGTERM, SIGINT)."""
        if not self.stopping.is_set():
            log.info("worker %s stopping after the current batch", self.id)
        self.stopping.set()

    def run_pass(self, *, full_plan: bool = True) -> PassResult:
        """Plan (or only expire and cancel), dispatch everything due, check missed diaries."""
        started = monotonic()
        with self.app.app_context():
            result = PassResult()
            now = self.clock()
            result.plan = planning.plan(now) if full_plan else planning.tidy(now)
            if full_plan:
                self._planned_at = monotonic()
            result.outcomes = self.dispatch()
            result.alerts = self.check_alerts()
            db.session.remove()
            observe_pass(monotonic() - started)
            return result

    def dispatch(self) -> Counter:
        """Claim, send and record batches until nothing is due (or asked to stop).

        The next batch is claimed and its messages built while the current one is with
        FCM, and the current one is recorded while the next is with FCM: the database
        work hides behind the network wait. Every claimed batch is
        sent and recorded, even when asked to stop: stopping only claims no more.
        """
        totals: Counter = Counter()
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fcm-send") as pool:
            in_flight: _Batch | None = None
            while True:
                upcoming = None if self.stopping.is_set() else self._next_batch()
                if in_flight is not None:  # FCM answers the current batch
                    self._await(in_flight, [b for b in (in_flight, upcoming) if b])
                if upcoming is not None:
                    upcoming.start(pool, self.sender)  # the next one goes out at once...
                if in_flight is not None:
                    totals.update(self._finish(in_flight))  # ...while this one is recorded
                if upcoming is None:
                    return totals
                in_flight = upcoming

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=float(self.config["REMINDER_LEASE_SECONDS"]))

    def _await(self, batch: _Batch, held: list[_Batch]) -> list[Outcome]:
        """Wait for FCM's answer to `batch`, renewing the lease of every batch held each
        half lease meanwhile: a slow FCM must not hand a batch to a second worker.

        The renewal is conditional on this worker still holding each row, so it never
        takes back a reminder another worker has claimed after a lapse.
        """
        half = self.lease.total_seconds() / 2
        while True:
            try:
                return batch.result(timeout=half)
            except TimeoutError:
                ids = [i for b in held for i in b.ids]
                renewed = renew(self.id, ids, self.clock(), self.lease)
                db.session.commit()
                log.info(
                    "worker %s: renewed the lease of %d/%d reminders", self.id, renewed, len(ids)
                )

    def _next_batch(self) -> _Batch | None:
        batch = int(self.config["FCM_BATCH_SIZE"])
        claimed = claim_bundles(self.id, self.clock(), batch, self.lease)
        db.session.commit()
        if not claimed:
            return None
        now = self.clock()
        messages, no_device = build_messages(claimed, now)
        db.session.commit()  # end the read transaction before the network wait
        return _Batch(claimed, messages, no_device, now)

    def _finish(self, batch: _Batch) -> Counter:
        outcomes = batch.result()
        counts = record(
            self.id,
            batch.claimed,
            batch.messages,
            outcomes,
            batch.no_device,
            self.clock(),
            float(self.config["REMINDER_RETRY_BASE_SECONDS"]),
            float(self.config["REMINDER_RETRY_MAX_SECONDS"]),
        )
        observe_outcomes(counts, outcomes)
        log.info(
            "worker %s: %d reminders, %d messages: %s",
            self.id,
            len(batch.claimed),
            len(batch.messages),
            ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
        )
        return counts

    def deliver(self, claimed: list[Claimed]) -> Counter:
        """Send and record one claimed batch, start to end (no overlap)."""
        now = self.clock()
        messages, no_device = build_messages(claimed, now)
        db.session.commit()
        batch = _Batch(claimed, messages, no_device, now)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fcm-send") as pool:
            batch.start(pool, self.sender)
            self._await(batch, [batch])
        return self._finish(batch)

    def check_alerts(self) -> int:
        from api.services.alerts import check_missed_diaries

        raised = check_missed_diaries(self.clock())
        db.session.commit()
        return raised

    def run(self, interval: float | None = None) -> None:
        """Loop until stopped: a full plan every REMINDER_PLAN_INTERVAL_SECONDS."""
        interval = float(interval or self.config["WORKER_INTERVAL_SECONDS"])
        plan_every = float(self.config["REMINDER_PLAN_INTERVAL_SECONDS"])
        log.info("reminder worker %s started (%s)", self.id, self._mode())
        while not self.stopping.is_set():
            due = self._planned_at is None or monotonic() - self._planned_at >= plan_every
            try:
                result = self.run_pass(full_plan=due)
                log.info("worker %s pass: %s", self.id, result.describe())
            except Exception:
                log.exception("worker %s: pass failed; retrying after the interval", self.id)
                with self.app.app_context():
                    db.session.remove()
            self.stopping.wait(interval)
        log.info("reminder worker %s stopped", self.id)

    def _mode(self) -> str:
        if self.sender.dry_run:
            return "no FCM credentials: logging what would be sent"
        return "sending through FCM"
