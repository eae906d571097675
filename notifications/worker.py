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

Quiet hours hold at send time too: a claimed reminder whose send instant falls in its
participant's 22:00-07:00 goes back to waiting until 07:00 local (or expires, if its use
is gone by then), and a retry's back-off never ends inside them.

The steps live in `claiming`, `composing` and `recording`; this module runs them.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from flask import Flask

from api.clock import utcnow
from api.extensions import db
from notifications import planning
from notifications.claiming import (
    Claimed,
    claim,
    claim_bundles,
    default_worker_id,
    release,
    renew,
    zones_of,
)
from notifications.composing import build_messages
from notifications.metrics import observe_outcomes, observe_pass
from notifications.quiet import split_quiet
from notifications.recording import RetryPolicy, backoff, record
from notifications.rules import ReminderRules
from notifications.sender import Outcome, Outgoing, Sender, sender_from_config

__all__ = ["Claimed", "PassResult", "Worker", "backoff", "claim"]  # the names tests import

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass
class PassResult:
    plan: planning.PlanResult | None = None
    outcomes: Counter[str] = field(default_factory=Counter)
    alerts: int = 0

    def describe(self) -> str:
        parts = [self.plan.describe()] if self.plan else []
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items()))
        parts.append(f"dispatched: {counts or 'nothing due'}")
        parts.append(f"{self.alerts} missed-diary alerts")
        return "; ".join(parts)


@dataclass
class _Batch:
    """Claimed reminders and their messages, on their way through the sender."""

    claimed: list[Claimed]
    messages: list[Outgoing]
    no_device: set[int]
    now: datetime
    leased_at: float  # the worker's timer when the lease was last taken or renewed
    zones: dict[int, str] = field(default_factory=dict)
    outcomes: list[Outcome] | None = None
    future: Future[list[Outcome]] | None = None

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

    def keep_only(self, ids: set[int]) -> None:
        """Drop the reminders not in `ids`, and every message that speaks for one of them."""
        self.claimed = [c for c in self.claimed if c.id in ids]
        self.messages = [m for m in self.messages if set(m.covers) <= ids]
        self.no_device &= ids


class Worker:
    """One reminder worker process (`flask --app wsgi notifications run`)."""

    def __init__(
        self,
        app: Flask,
        sender: Sender | None = None,
        worker_id: str | None = None,
        clock: Clock | None = None,
        *,
        timer: Callable[[], float] = monotonic,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        """`clock` gives the instant reminders are judged at; `timer` (seconds) paces the
        loop's planning and `wait` its pause between passes (it returns early on `stop`).
        Tests pass simulated ones so that hours of the loop run without sleeping."""
        self.app = app
        self.sender = sender or sender_from_config(app.config)
        self.id = worker_id or default_worker_id()
        self.clock = clock or utcnow
        self.stopping = threading.Event()
        self.timer = timer
        self.wait = wait or self.stopping.wait
        self._planned_at: float | None = None
        self.rules = ReminderRules.from_study(app.extensions["study"])

    @property
    def config(self) -> dict[str, Any]:
        return self.app.config

    def stop(self, *_args: object) -> None:
        """Finish the batch in hand, record it, and leave (SIGTERM, SIGINT)."""
        if not self.stopping.is_set():
            log.info("worker %s stopping after the current batch", self.id)
        self.stopping.set()

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            float(self.config["REMINDER_RETRY_BASE_SECONDS"]),
            float(self.config["REMINDER_RETRY_MAX_SECONDS"]),
            self.rules,
        )

    def run_pass(self, *, full_plan: bool = True) -> PassResult:
        """Plan (or only expire and cancel), dispatch everything due, check missed diaries."""
        started = monotonic()
        with self.app.app_context():
            result = PassResult()
            now = self.clock()
            settings = planning.PlanSettings.from_app(self.app)
            result.plan = (
                planning.plan(now, settings) if full_plan else planning.tidy(now, settings)
            )
            if full_plan:
                self._planned_at = self.timer()
            result.outcomes = self.dispatch()
            result.alerts = self.check_alerts()
            db.session.remove()
            observe_pass(monotonic() - started)
            return result

    def dispatch(self) -> Counter[str]:
        """Claim, send and record batches until nothing is due (or asked to stop).

        The next batch is claimed and its messages built while the current one is with
        FCM, and the current one is recorded while the next is with FCM: the database
        work hides behind the network wait. Every claimed batch is
        sent and recorded, even when asked to stop: stopping only claims no more.
        """
        totals: Counter[str] = Counter()
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
        """Wait for FCM's answer to `batch`, renewing the lease of every batch held once it
        is half a lease old: neither a slow FCM nor slow database work since the claim may
        hand a batch to a second worker. On return every held lease has half a lease left.

        The renewal is conditional on this worker still holding each row, so it never
        takes back a reminder another worker has claimed after a lapse.
        """
        half = self.lease.total_seconds() / 2
        while True:
            oldest = min(b.leased_at for b in held)
            if self.timer() - oldest >= half:
                self._renew(held)
                continue
            try:
                return batch.result(timeout=oldest + half - self.timer())
            except TimeoutError:
                continue

    def _renew(self, held: list[_Batch]) -> None:
        """Renew every held lease; a batch not yet sent drops the reminders whose lease
        lapsed (another worker may have claimed them: sending them too would repeat them)."""
        ids = [i for b in held for i in b.ids]
        renewed = renew(self.id, ids, self.clock(), self.lease)
        db.session.commit()
        for b in held:
            b.leased_at = self.timer()
            if b.future is None and b.outcomes is None:
                b.keep_only(renewed)
        log.info("worker %s: renewed the lease of %d/%d reminders", self.id, len(renewed), len(ids))

    def _next_batch(self) -> _Batch | None:
        """Claim the next batch to send; the reminders quiet hours hold are given back
        (and another batch claimed if that left none)."""
        size = int(self.config["FCM_BATCH_SIZE"])
        while True:
            leased_at = self.timer()
            claimed = claim_bundles(self.id, self.clock(), size, self.lease)
            db.session.commit()
            if not claimed:
                return None
            now = self.clock()
            zones = zones_of(claimed)
            claimed, held = split_quiet(claimed, zones, self.rules, now)
            if held:
                release(self.id, held, now)
                db.session.commit()
                log.info("worker %s: %d reminders held by quiet hours", self.id, len(held))
            if claimed:
                break
        messages, no_device = build_messages(claimed, now)
        db.session.commit()  # end the read transaction before the network wait
        return _Batch(claimed, messages, no_device, now, leased_at, zones)

    def _finish(self, batch: _Batch) -> Counter[str]:
        outcomes = batch.result()
        counts = record(
            self.id,
            batch.claimed,
            batch.messages,
            outcomes,
            batch.no_device,
            self.clock(),
            self.policy,
            batch.zones,
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

    def deliver(self, claimed: list[Claimed]) -> Counter[str]:
        """Send and record one claimed batch, start to end (no overlap)."""
        leased_at, now = self.timer(), self.clock()
        zones = zones_of(claimed)
        messages, no_device = build_messages(claimed, now)
        db.session.commit()
        batch = _Batch(claimed, messages, no_device, now, leased_at, zones)
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
            due = self._planned_at is None or self.timer() - self._planned_at >= plan_every
            try:
                result = self.run_pass(full_plan=due)
                log.info("worker %s pass: %s", self.id, result.describe())
            except Exception:
                log.exception("worker %s: pass failed; retrying after the interval", self.id)
                with self.app.app_context():
                    db.session.remove()
            self.wait(interval)
        log.info("reminder worker %s stopped", self.id)

    def _mode(self) -> str:
        if self.sender.dry_run:
            return "no FCM credentials: logging what would be sent"
        return "sending through FCM"
