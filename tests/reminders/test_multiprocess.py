"""Several worker processes on PostgreSQL: each reminder sent once; a killed worker loses none.

The workers are real `flask --app wsgi notifications run` processes with the real
firebase-admin SDK, pointed at the fake FCM of the test process; their sockets are
guarded too (`tests/guarded_site/sitecustomize.py`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, insert, select, text, update

from api.extensions import db
from api.models import Device, Participant, Reminder, ScheduleEvent, Site

# A loaded CI machine (2 cores shared by several suites) sends far slower than an idle one:
# the tests wait on progress, not on a fixed total, and get a generous per-test timeout.
STALL_SECONDS = 90  # no reminder sent for this long: the workers are stuck, fail
TOTAL_SECONDS = 1_200  # a backstop under the per-test timeout below
pytestmark = [pytest.mark.postgres_only, pytest.mark.timeout(TOTAL_SECONDS + 120)]
ROOT = Path(__file__).resolve().parents[2]
PARTICIPANTS = 1_000
EVENTS_EACH = 10  # 10,000 due reminders in all
# The crash test's worker is killed holding a batch, with most of the 2,000 reminders (40
# batches of 50) still waiting for the three workers started after it.
CRASH_PARTICIPANTS = 200


def midday_zone(now: datetime) -> str:
    """A zone where `now` is around noon: the workers run on the wall clock, and their
    reminders must not fall in the participants' quiet hours (22:00-07:00 local)."""
    offset = 12 - now.hour  # -11 … +12
    if offset == 0:
        return "UTC"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX sign: GMT-8 is UTC+8


def seed(app, participants: int = PARTICIPANTS) -> list[int]:
    """Active participants (1,000 unless told) with a phone each and 10 due visit
    reminders each."""
    now = datetime.now(UTC)
    zone = midday_zone(now)
    today = now.astimezone(ZoneInfo(zone)).date()
    with app.app_context():
        site_id = db.session.scalar(select(Site.id).where(Site.code == "BJ302"))
        db.session.execute(
            insert(Participant.__table__),
            [
                {
                    "study_code": f"MP-{n:05d}",
                    "site_id": site_id,
                    "arm": "control",
                    "enrolled_on": today,
                    "timezone": zone,
                    "locale": "zh-CN" if n % 2 else "en",
                    "status": "active",
                    "reminder_time": "09:00",
                    "diary_reminder_time": "20:00",
                    "created_at": now,
                    "auth_epoch": 0,
                    "version": 1,
                }
                for n in range(participants)
            ],
        )
        ids = list(db.session.scalars(select(Participant.id).order_by(Participant.id)))
        db.session.execute(
            insert(Device.__table__),
            [
                {
                    "participant_id": pid,
                    "token": f"mp-token-{pid}",
                    "platform": "android",
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid in ids
            ],
        )
        target = today + timedelta(days=60)
        db.session.execute(
            insert(ScheduleEvent.__table__),
            [
                {
                    "participant_id": pid,
                    "kind": "follow_up",
                    "number": n,
                    "month": 2,
                    "planned_date": target,
                    "target_date": target,
                    "window_start": target,
                    "window_end": target,
                    "status": "scheduled",
                    "updated_at": now,
                    "version": 1,
                }
                for pid in ids
                for n in range(1, EVENTS_EACH + 1)
            ],
        )
        events = db.session.execute(select(ScheduleEvent.id, ScheduleEvent.participant_id)).all()
        db.session.execute(
            insert(Reminder.__table__),
            [
                {
                    "participant_id": pid,
                    "kind": "visit",
                    "target": f"event:{event_id}:{target.isoformat()}",
                    "schedule_event_id": event_id,
                    "target_date": target,
                    "offset_days": 3,
                    "due_at": now - timedelta(minutes=1),
                    "expires_at": now + timedelta(days=1),
                    "status": "planned",
                    "attempts": 0,
                    "created_at": now,
                    "updated_at": now,
                }
                for event_id, pid in events
            ],
        )
        db.session.commit()
        return list(db.session.scalars(select(Reminder.id).order_by(Reminder.id)))


def start_workers(database_url: str, fake_fcm, tmp_path: Path, n: int, **env: str):
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "0",
        "FCM_CREDENTIALS": str(fake_fcm.service_account),
        "FCM_ENDPOINT": fake_fcm.url,
        "FCM_BATCH_SIZE": "100",
        "WORKER_INTERVAL_SECONDS": "1",
        "PYTHONPATH": f"{ROOT / 'tests' / 'guarded_site'}{os.pathsep}{ROOT}",
        "SOCKET_GUARD_ROOT": str(ROOT),
        **env,
    }
    environment.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    flask = str(Path(sys.executable).with_name("flask"))
    workers = []
    for i in range(n):
        log = (tmp_path / f"worker-{i}.log").open("w")
        process = subprocess.Popen(
            [flask, "--app", "wsgi", "notifications", "run"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers.append((process, tmp_path / f"worker-{i}.log"))
    return workers


def stop_workers(workers) -> None:
    for process, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, _ in workers:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # pragma: no cover - reported by the assertion
            process.kill()
            process.wait()


def wait_until_all_sent(app, ids: set[int], workers) -> None:
    """Until no reminder of `ids` waits; fail if none was sent for STALL_SECONDS (the
    killed worker's lease is seconds, so the rest never legitimately wait that long)."""
    started = last_progress = time.monotonic()
    fewest = len(ids) + 1
    while True:
        with app.app_context():
            left = db.session.scalar(
                select(func.count())
                .select_from(Reminder)
                .where(Reminder.id.in_(ids), Reminder.status.in_(("planned", "sending")))
            )
            db.session.remove()
        if left == 0:
            return
        crashed = [p.returncode for p, _ in workers if p.poll() not in (None, -9)]
        assert not crashed, f"a worker exited: {crashed}"
        now = time.monotonic()
        if left < fewest:
            fewest, last_progress = left, now
        if now - last_progress > STALL_SECONDS:
            pytest.fail(f"{left} reminders still unsent, none sent for {STALL_SECONDS} s")
        if now - started > TOTAL_SECONDS:
            pytest.fail(f"{left} reminders still unsent after {TOTAL_SECONDS} s")
        time.sleep(0.5)


def statuses(app, ids) -> Counter:
    with app.app_context():
        rows = db.session.execute(
            select(Reminder.status, func.count())
            .where(Reminder.id.in_(ids))
            .group_by(Reminder.status)
        ).all()
        return Counter(dict(rows))


def test_four_workers_send_ten_thousand_reminders_each_exactly_once(
    app, database_url, fake_fcm, tmp_path
):
    ids = seed(app)
    assert len(ids) == PARTICIPANTS * EVENTS_EACH
    # Stale ones, changed before the workers start: a withdrawal and a rescheduled event.
    with app.app_context():
        withdrawn = db.session.scalars(
            select(Participant.id).order_by(Participant.id).limit(5)
        ).all()
        db.session.execute(
            update(Participant).where(Participant.id.in_(withdrawn)).values(status="withdrawn")
        )
        moved_event = db.session.scalar(
            select(ScheduleEvent.id).where(ScheduleEvent.participant_id.not_in(withdrawn)).limit(1)
        )
        db.session.execute(
            update(ScheduleEvent)
            .where(ScheduleEvent.id == moved_event)
            .values(target_date=ScheduleEvent.target_date + text("7"))
        )
        stale = set(
            db.session.scalars(
                select(Reminder.id).where(
                    (Reminder.participant_id.in_(withdrawn))
                    | (Reminder.schedule_event_id == moved_event)
                )
            )
        )
        db.session.commit()
    assert len(stale) == 5 * EVENTS_EACH + 1
    fresh = set(ids) - stale
    workers = start_workers(database_url, fake_fcm, tmp_path, 4)
    try:
        wait_until_all_sent(app, fresh, workers)
    finally:
        stop_workers(workers)
    delivered = fake_fcm.delivered()
    assert set(delivered) >= fresh
    assert not set(delivered) & stale
    repeats = {rid: n for rid, n in delivered.items() if n != 1}
    assert repeats == {}
    assert statuses(app, fresh) == Counter({"sent": len(fresh)})
    assert statuses(app, stale) == Counter({"cancelled": len(stale)})
    logs = [path.read_text() for _, path in workers]
    assert [p.returncode for p, _ in workers] == [0, 0, 0, 0]
    assert all("stopped" in log and "Traceback" not in log for log in logs), logs
    assert all("socket guard" not in log for log in logs)
    busy = [log for log in logs if " sent" in log and "messages:" in log]
    assert len(busy) >= 2, "the rows were not shared between workers"


def test_a_killed_worker_loses_nothing_and_repeats_only_its_in_flight_messages(
    app, database_url, fake_fcm, tmp_path
):
    ids = set(seed(app, CRASH_PARTICIPANTS))
    assert len(ids) == CRASH_PARTICIPANTS * EVENTS_EACH
    fake_fcm.state.delay = 0.2  # each batch is in flight for a while
    settings = {"FCM_BATCH_SIZE": "50", "REMINDER_LEASE_SECONDS": "8"}
    # The victim starts alone and dies holding its first claim, whatever the machine's
    # speed; the survivors start after it and must take over what it held.
    workers = start_workers(database_url, fake_fcm, tmp_path, 1, **settings)
    victim, _ = workers[0]
    try:
        deadline = time.monotonic() + 120
        leased = 0
        while time.monotonic() < deadline and not leased:
            with app.app_context():
                leased = db.session.scalar(
                    select(func.count())
                    .select_from(Reminder)
                    .where(
                        Reminder.status == "sending", Reminder.lease_owner.like(f"%:{victim.pid}:%")
                    )
                )
                db.session.remove()
            time.sleep(0.05)
        assert leased, "the worker never claimed anything"
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        with app.app_context():  # frozen now: nobody may take them before the lease ends
            in_flight = set(
                db.session.scalars(
                    select(Reminder.id).where(
                        Reminder.status == "sending", Reminder.lease_owner.like(f"%:{victim.pid}:%")
                    )
                )
            )
            db.session.remove()
        assert in_flight
        survivors = tmp_path / "survivors"
        survivors.mkdir()
        workers += start_workers(database_url, fake_fcm, survivors, 3, **settings)
        wait_until_all_sent(app, ids, workers)
    finally:
        stop_workers(workers)
    delivered = fake_fcm.delivered()
    assert set(delivered) >= ids  # nothing lost
    repeats = {rid for rid, n in delivered.items() if n > 1}
    assert repeats <= in_flight  # a repeat only for what was in flight at the crash
    assert statuses(app, ids) == Counter({"sent": len(ids)})
    with app.app_context():
        retaken = db.session.scalars(
            select(Reminder.attempts).where(Reminder.id.in_(in_flight))
        ).all()
    assert set(retaken) == {2}
    assert [p.returncode for p, _ in workers[1:]] == [0, 0, 0]
