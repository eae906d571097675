"""FCM goes away: reminders wait and retry, then arrive once, or expire; no worker crashes or spins.

Simulated time drives every pass (the `clock` fixture), so hours of outage take seconds and
back-offs are never slept out; the worker's own loop runs on simulated time too (its `timer`
and `wait`). The fake FCM counts every request; the schedule each reminder should have
followed is recomputed from the pass instants and compared with what reached the fake and
with the delivery rows — the proof that the worker neither spins nor gives up early, and
that nothing is tried in the participant's quiet hours (22:00-07:00 local).
"""

from __future__ import annotations

import logging
import socket
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from api.models import Participant, Reminder, ReminderDelivery
from notifications.sender import Outgoing
from notifications.worker import Worker, backoff
from tests.fake_fcm import FakeFcm
from tests.reminders.conftest import add_device
from tests.tcp_proxy import TcpProxy

OUTAGE_START = datetime(2026, 4, 4, 12, 0, tzinfo=UTC)
RECOVERY = datetime(2026, 4, 4, 16, 30, tzinfo=UTC)
END = datetime(2026, 4, 4, 18, 10, tzinfo=UTC)
BASE, CAP = 30.0, 3600.0  # the configured back-off (REMINDER_RETRY_*_SECONDS defaults)


@dataclass(frozen=True)
class Expected:
    attempts: list[datetime]
    status: str  # sent / expired
    held: bool = False  # quiet hours held it back at least once


def people(app: Flask, factory, clock) -> dict[str, list[str]]:
    """Four participants whose reminders of 4 April expire at three different instants.

    Infusion 2 and a lab visit fall on 5 April for everyone: their "1 day before"
    reminders expire when 5 April begins locally, the 4 April diary reminder at local
    midnight. Shanghai (16:00Z) and Tokyo (15:00Z) lose their use during the outage;
    Berlin's (22:00Z) outlive it.
    """
    clock.set("2026-01-06T10:00:00+08:00")
    enrolled = date(2026, 1, 5)
    plan = {
        "shanghai": dict(timezone="Asia/Shanghai", diary_reminder_time="21:00"),
        "tokyo": dict(timezone="Asia/Tokyo", reminder_time="21:30"),
        "berlin-a": dict(timezone="Europe/Berlin", diary_reminder_time="15:00"),
        "berlin-b": dict(timezone="Europe/Berlin", reminder_time="15:00"),
    }
    tokens: dict[str, list[str]] = {}
    for name, extra in plan.items():
        p = factory.participant(arm="msc", enrolled_on=enrolled, **extra)
        tokens[name] = [f"{name}-phone"]
        add_device(app, p, f"{name}-phone")
        if name == "berlin-a":  # a second phone: one message per device
            add_device(app, p, f"{name}-tablet", platform="ios")
            tokens[name].append(f"{name}-tablet")
    return tokens


def warm_up(sender: Any, fake: FakeFcm) -> None:
    """Fetch the SDK's access token before the outage (the token exchange is tested apart)."""
    now = datetime.now(UTC)
    message = Outgoing(0, 0, "warm-up", "android", "diary", "en", "t", "b", "2026-04-04", now)
    assert sender.send([message], now)[0].ok
    assert fake.state.token_exchanges == 1


def instants(start: datetime, end: datetime) -> list[datetime]:
    """A pass every simulated minute for the first 40 minutes after the outage begins and
    after FCM returns (where the back-off is short), every third minute between (where it
    is 8 minutes or more); every tenth minute a second pass at the same instant (it must
    find nothing to do). The expected schedule is computed from these same instants."""
    out, t = [], start
    while t <= end:
        out.append(t)
        if (t - start).total_seconds() % 600 == 0:
            out.append(t)
        dense = t < start + timedelta(minutes=40) or RECOVERY <= t < RECOVERY + timedelta(
            minutes=40
        )
        step = 1 if dense or (t + timedelta(minutes=3) > RECOVERY > t) else 3
        t += timedelta(minutes=step)
    return out


def night_end(t: datetime, zone: str) -> datetime | None:
    """07:00 local after `t` when `t` falls in the quiet hours (22:00-07:00 local), else None."""
    local = t.astimezone(ZoneInfo(zone))
    if 7 <= local.hour < 22:
        return None
    day = local.date() + timedelta(days=1 if local.hour >= 22 else 0)
    return datetime.combine(day, time(7), ZoneInfo(zone)).astimezone(UTC)


def expected_schedule(
    due: datetime,
    expires: datetime,
    stale: datetime | None,
    zone: str,
    passes: list[datetime],
    recovery: datetime,
    retry_after: float,
) -> Expected:
    """What the documented rules make of one reminder, pass by pass: a try when due and
    its back-off has run out, failing before `recovery`; never in the participant's quiet
    hours: a try (or a back-off's end) that falls in them waits for 07:00 local; expired
    when the next try would fall at or after its expiry, or when the expiry comes first,
    or when a nearer reminder of the same event falls due (`stale`)."""
    attempts: list[datetime] = []
    next_at, held = due, False
    for t in passes:
        if t >= expires or (stale is not None and t >= stale):
            return Expected(attempts, "expired", held)
        if t < next_at:
            continue
        morning = night_end(t, zone)
        if morning is not None:  # held back into the night: waits for the morning
            held = True
            if morning >= expires:
                return Expected(attempts, "expired", held)
            next_at = morning
            continue
        attempts.append(t)
        if t >= recovery:
            return Expected(attempts, "sent", held)
        next_at = t + timedelta(seconds=backoff(len(attempts), BASE, CAP, retry_after))
        if night_end(next_at, zone) is not None:
            next_at, held = night_end(next_at, zone), True
        if next_at >= expires:
            return Expected(attempts, "expired", held)
    raise AssertionError(f"reminder due {due} unsettled at the end of the run")


def run_passes(worker: Worker, clock, passes: list[datetime]) -> None:
    """One in-process worker pass per instant, a full plan every ten simulated minutes
    (the worker's loop plans less often than it dispatches); any exception fails the test."""
    for t in passes:
        clock.set(t)
        result = worker.run_pass(full_plan=(t - OUTAGE_START).total_seconds() % 600 == 0)
        assert not result.outcomes.get("lease_lost")


def settled(factory) -> list[Reminder]:
    return factory.scalars(
        select(Reminder).where(Reminder.due_at <= END).order_by(Reminder.due_at, Reminder.id)
    )


def delivery_instants(factory) -> dict[int, dict[int, list[datetime]]]:
    """reminder → device → the instants of its tries."""
    out: dict[int, dict[int, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for d in factory.scalars(select(ReminderDelivery).order_by(ReminderDelivery.id)):
        out[d.reminder_id][d.device_id].append(d.at)
    return out


def stale_instants(reminders: list[Reminder]) -> dict[int, datetime]:
    """When a nearer reminder of the same event falls due, per reminder that has one."""
    out: dict[int, datetime] = {}
    for r in reminders:
        nearer = [
            o.due_at
            for o in reminders
            if (o.participant_id, o.kind, o.target) == (r.participant_id, r.kind, r.target)
            and o.offset_days < r.offset_days
        ]
        if nearer:
            out[r.id] = min(nearer)
    return out


def one_notice_per_event(fake: FakeFcm) -> None:
    """No phone got two accepted notices for one event or diary day."""
    notices = Counter(
        (m.token, m.kind, m.message["data"]["target_date"])
        for m in fake.received
        if m.answer == "ok" and m.reminder_id != "0"
    )
    assert notices and max(notices.values()) == 1, notices


def check_outcome(factory, fake, passes, retry_after: float, error_prefix: str) -> dict:
    """Every reminder followed its expected schedule; the useful ones arrived exactly once."""
    reminders = settled(factory)
    stale = stale_instants(reminders)
    zones = {p.id: p.timezone for p in factory.scalars(select(Participant))}
    tries = delivery_instants(factory)
    accepted = fake.delivered()
    by_status: dict[str, set[str]] = defaultdict(set)
    held = 0
    for r in reminders:
        zone = zones[r.participant_id]
        want = expected_schedule(
            r.due_at, r.expires_at, stale.get(r.id), zone, passes, RECOVERY, retry_after
        )
        held += want.held
        assert not [t for t in want.attempts if night_end(t, zone)]  # never tried at night
        devices = tries[r.id]
        assert r.status == want.status, (r.kind, r.due_at, r.status, want)
        assert r.attempts == len(want.attempts), (r.kind, r.due_at, r.attempts, want)
        assert devices, f"reminder {r.id} was never tried"
        for device_tries in devices.values():
            assert device_tries == want.attempts, (r.kind, r.due_at, device_tries, want)
        if want.status == "sent":
            assert accepted[r.id] == len(devices)  # exactly once per device
            assert r.sent_at == want.attempts[-1] < r.expires_at and r.last_error is None
        else:
            assert accepted[r.id] == 0
            assert r.last_error.startswith(error_prefix), r.last_error
            assert r.sent_at is None and want.attempts[-1] < r.expires_at
        assert all(t < r.expires_at for t in want.attempts)  # nothing tried after its use
        by_status[want.status].add(r.kind)
    # Both fates met diary and event reminders alike.
    assert by_status["sent"] >= {"diary", "infusion", "visit"}, by_status
    assert by_status["expired"] >= {"diary", "infusion", "visit"}, by_status
    assert stale, "no reminder was superseded during the outage"
    assert held, "no reminder's retries ran into quiet hours"
    one_notice_per_event(fake)
    return {r.id: tries[r.id] for r in reminders}


# --- 1. FCM answers 503 ------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", [None, "900"], ids=["no-retry-after", "retry-after"])
def test_a_503_outage_waits_retries_on_schedule_then_delivers_once_or_expires(
    app, factory, clock, worker, fcm_sender, fake_fcm, retry_after
):
    people(app, factory, clock)
    warm_up(fcm_sender, fake_fcm)
    fake_fcm.go_down(retry_after)
    passes = instants(OUTAGE_START, END)
    run_passes(worker, clock, passes[: passes.index(RECOVERY)])
    # During the outage: nothing sent, nothing accepted, every reminder still waiting or
    # expired with FCM's answer as its error.
    during = [r for r in settled(factory) if r.due_at < RECOVERY]
    assert during and not [r for r in during if r.status == "sent"]
    assert not fake_fcm.delivered() - Counter({0: 1})
    assert {r.status for r in during} <= {"planned", "expired"}
    assert all(r.last_error.startswith("UNAVAILABLE") for r in during)
    fake_fcm.come_back()
    run_passes(worker, clock, passes[passes.index(RECOVERY) :])

    tries = check_outcome(factory, fake_fcm, passes, float(retry_after or 0), "UNAVAILABLE")
    # The requests FCM received are exactly the scheduled tries, one per device each.
    per_reminder = Counter(
        int(rid) for r in fake_fcm.received for rid in r.reminder_ids if rid != "0"
    )
    assert per_reminder == Counter({rid: sum(map(len, d.values())) for rid, d in tries.items()})
    # Every 503 came before the first accepted reminder: nothing went out during the outage.
    outage = [r.at for r in fake_fcm.received if r.answer == "OUTAGE"]
    accepted = [r.at for r in fake_fcm.received if r.answer == "ok" and r.reminder_id != "0"]
    assert outage and accepted and max(outage) < min(accepted)


# --- 2. connections refused; the token exchange down -------------------------------------


def count_connects(monkeypatch, port: int) -> list[int]:
    """Count connection attempts to `port` (refused ones included)."""
    calls: list[int] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[1] == port:
            calls.append(1)
        return original(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return calls


def test_refused_connections_wait_retry_on_schedule_then_deliver_once_or_expire(
    app, factory, clock, worker, fcm_sender, fake_fcm, monkeypatch
):
    people(app, factory, clock)
    warm_up(fcm_sender, fake_fcm)
    fake_fcm.refuse_connections()
    connects = count_connects(monkeypatch, fake_fcm.port)
    passes = instants(OUTAGE_START, END)
    run_passes(worker, clock, passes[: passes.index(RECOVERY)])
    during = [r for r in settled(factory) if r.due_at < RECOVERY]
    assert during and not [r for r in during if r.status == "sent"]
    assert all(r.last_error.startswith("UNAVAILABLE") for r in during), during[0].last_error
    # Messages tried: a bundle (one participant, one due minute) is one message per device.
    bundle = {r.id: (r.participant_id, r.due_at.replace(second=0)) for r in settled(factory)}
    tried = len(
        {
            (bundle[rid], device, at)
            for rid, d in delivery_instants(factory).items()
            for device, ts in d.items()
            for at in ts
        }
    )
    # One connection attempt per message, and at most the one connect retry the adapter
    # allows (nothing was sent): no loop of reconnects.
    assert tried <= len(connects) <= 2 * tried
    fake_fcm.come_back()
    run_passes(worker, clock, passes[passes.index(RECOVERY) :])

    tries = check_outcome(factory, fake_fcm, passes, 0.0, "UNAVAILABLE")
    # FCM saw only the deliveries after recovery: one per device of each useful reminder.
    accepted = Counter(int(rid) for r in fake_fcm.received for rid in r.reminder_ids if rid != "0")
    sent = {r.id: len(tries[r.id]) for r in settled(factory) if r.status == "sent"}
    assert accepted == Counter(sent)


@pytest.fixture
def token_proxy(fake_fcm: FakeFcm) -> Any:
    proxy = TcpProxy("127.0.0.1", fake_fcm.port)
    yield proxy
    proxy.close()


def test_the_token_exchange_down_holds_reminders_back_until_it_returns(
    app, factory, clock, fake_fcm, token_proxy, tmp_path: Path
):
    """No access token, no message: the whole batch waits (UNKNOWN, transient) and goes
    out once the token endpoint answers again, exactly once."""
    import firebase_admin

    from notifications.sender import sender_from_config

    account = fake_fcm.write_service_account(
        tmp_path / "via-proxy.json", token_uri=f"http://127.0.0.1:{token_proxy.port}/token"
    )
    config = {
        **app.config,
        "FCM_CREDENTIALS": str(account),
        "FCM_ENDPOINT": fake_fcm.url,
        "FCM_TIMEOUT_SECONDS": 2,
    }
    sender = sender_from_config(config)
    try:
        worker = Worker(app, sender=sender, worker_id="token-less")
        people(app, factory, clock)
        token_proxy.cut()
        start = datetime(2026, 4, 4, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo, before quiet hours
        passes = [start + timedelta(minutes=m) for m in range(0, 8)]
        for t in passes:
            clock.set(t)
            worker.run_pass()
        waiting = [r for r in settled(factory) if r.due_at <= start]
        assert waiting and {r.status for r in waiting} == {"planned"}
        assert all(r.last_error.startswith("UNKNOWN") for r in waiting), waiting[0].last_error
        # 12:00, 12:01 (30 s), 12:02 (60 s), 12:04 (120 s); the next at 12:08.
        assert {r.attempts for r in waiting} == {4}
        assert fake_fcm.received == [] and fake_fcm.state.token_exchanges == 0
        token_proxy.restore()
        for t in (datetime(2026, 4, 4, 12, 7, tzinfo=UTC), datetime(2026, 4, 4, 12, 8, tzinfo=UTC)):
            clock.set(t)
            worker.run_pass()
        # The SDK's threads of the first batch may each fetch a token; no more than that.
        assert 1 <= fake_fcm.state.token_exchanges <= len(fake_fcm.received)
        after = [r for r in settled(factory) if r.due_at <= start]
        assert {r.status for r in after} == {"sent"}
        devices = delivery_instants(factory)
        accepted = fake_fcm.delivered()
        assert all(accepted[r.id] == len(devices[r.id]) for r in after)  # once per device
        # ... and nothing else reached FCM (a bundled message counts for each of its reminders)
        assert sum(accepted.values()) == sum(len(r.reminder_ids) for r in fake_fcm.received)
    finally:
        firebase_admin.delete_app(sender.app)


# --- a reminder superseded during the outage ----------------------------------------------


def test_a_notice_outdated_during_the_outage_expires_instead_of_arriving_beside_the_next(
    app, factory, clock, worker, fcm_sender, fake_fcm
):
    """Two days of outage: the "3 days before" notices wait, then the "1 day before" ones
    fall due. After recovery the phone gets one notice per event, the nearer one; the
    outdated one ends expired with FCM's error kept (the planner would never have stored
    it at that point, and both would have said "tomorrow")."""
    clock.set("2026-01-06T10:00:00+08:00")
    p = factory.participant(
        arm="msc", enrolled_on=date(2026, 1, 5), timezone="Europe/Berlin", reminder_time="15:00"
    )
    add_device(app, p, "phone")
    warm_up(fcm_sender, fake_fcm)
    fake_fcm.go_down()
    start = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)  # "3 days before" due at 13:00Z
    one_day_due = datetime(2026, 4, 4, 13, 0, tzinfo=UTC)
    t = start
    while t < one_day_due:
        clock.set(t)
        worker.run_pass()
        t += timedelta(hours=1)
    fake_fcm.come_back()
    clock.set(one_day_due)
    worker.run_pass()

    events = factory.scalars(
        select(Reminder).where(Reminder.participant_id == p.id, Reminder.kind != "diary")
    )
    outdated = [r for r in events if r.offset_days == 3 and r.target_date == date(2026, 4, 5)]
    nearer = [r for r in events if r.offset_days == 1 and r.target_date == date(2026, 4, 5)]
    assert len(outdated) == len(nearer) == 2  # the infusion and the lab visit
    for r in outdated:
        assert (r.status, r.sent_at) == ("expired", None)
        assert r.last_error.startswith("UNAVAILABLE") and r.attempts > 2
    assert {r.status for r in nearer} == {"sent"}
    assert fake_fcm.delivered() - Counter({0: 1}) == Counter({r.id: 1 for r in nearer})
    one_notice_per_event(fake_fcm)


# --- 3. the worker's own loop through an outage --------------------------------------------


def max_tries(span: float) -> int:
    """The most tries one reminder can get within `span` simulated seconds of outage."""
    tries, elapsed = 1, 0.0
    while elapsed + backoff(tries, BASE, CAP, None) <= span:
        elapsed += backoff(tries, BASE, CAP, None)
        tries += 1
    return tries


class SimulatedLoop:
    """The loop's clock, timer and pause on simulated time: each pause moves time on by the
    interval, and FCM through its phases (503s, refused connections, back) at set instants.
    Once FCM is back and every reminder due at the start has settled, it stops the worker."""

    REFUSE_AT, RECOVER_AT, GIVE_UP_AT = 450.0, 900.0, 4 * 3600.0

    def __init__(self, fake: FakeFcm, factory: Any) -> None:
        self.fake, self.factory = fake, factory
        self.elapsed = 0.0
        self.waits: list[float] = []
        self.worker: Worker | None = None
        self.during: Counter[tuple[int, str]] = Counter()

    def clock(self) -> datetime:
        return OUTAGE_START + timedelta(seconds=self.elapsed)

    def timer(self) -> float:
        return self.elapsed

    def wait(self, seconds: float) -> bool:
        assert self.worker is not None
        self.waits.append(seconds)
        before = self.elapsed
        self.elapsed += seconds
        if before < self.REFUSE_AT <= self.elapsed:
            self.fake.refuse_connections()
        if before < self.RECOVER_AT <= self.elapsed:
            self.during = Counter(
                (int(r.reminder_id), r.token) for r in self.fake.received if r.reminder_id != "0"
            )
            self.fake.come_back()
        if self.elapsed >= self.RECOVER_AT and (self.settled() or self.elapsed > self.GIVE_UP_AT):
            self.worker.stop()
        return self.worker.stopping.is_set()

    def first(self) -> list[Reminder]:
        return [r for r in settled(self.factory) if r.due_at <= OUTAGE_START]

    def settled(self) -> bool:
        first = self.first()
        return bool(first) and all(r.status in ("sent", "expired") for r in first)


def test_the_worker_loop_rides_out_an_outage_without_crashing_or_spinning(
    app, factory, clock, fcm_sender, fake_fcm, caplog
):
    """`Worker.run` on simulated time (its clock, timer and pause injected): 503s, then
    refused connections, then recovery. Counted, not timed: passes against the loop's
    pauses, FCM requests against the back-off."""
    people(app, factory, clock)
    warm_up(fcm_sender, fake_fcm)
    interval = 30.0
    sim = SimulatedLoop(fake_fcm, factory)
    worker = Worker(
        app, sender=fcm_sender, worker_id="loop", clock=sim.clock, timer=sim.timer, wait=sim.wait
    )
    sim.worker = worker
    passes: list[float] = []
    real_pass = worker.run_pass

    def counted_pass(**kwargs: Any) -> Any:
        passes.append(sim.elapsed)
        return real_pass(**kwargs)

    worker.run_pass = counted_pass  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="notifications")
    fake_fcm.go_down()
    worker.run(interval=interval)
    # No busy loop: one pause of the interval after every pass, and nothing else.
    assert len(passes) == len(sim.waits) and set(sim.waits) == {interval}
    assert passes == [n * interval for n in range(len(passes))]
    assert sim.elapsed < sim.GIVE_UP_AT, "reminders unsettled hours after recovery"
    # No spinning on FCM: no reminder tried more often than its back-off allows.
    bound = max_tries(sim.RECOVER_AT)
    assert sim.during and max(sim.during.values()) <= bound, (sim.during, bound)
    first = sim.first()
    sent = [r for r in first if r.status == "sent"]
    assert sent and all(r.sent_at < r.expires_at for r in sent)
    assert all(r.sent_at >= OUTAGE_START + timedelta(seconds=sim.RECOVER_AT) for r in sent)
    devices = delivery_instants(factory)
    accepted = fake_fcm.delivered()
    assert all(accepted[r.id] == len(devices[r.id]) for r in sent)  # once per device
    assert all(accepted[r.id] == 0 for r in first if r.status == "expired")
    one_notice_per_event(fake_fcm)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "stopped" in caplog.text
