"""Benchmark: reminder planning and dispatch on PostgreSQL, each against its floor.

    .venv/bin/python bench/reminders.py [--participants 100000] [--messages 100000]

Makes its own database (``bench_reminders_<random>``, dropped at the end) next to
``BENCH_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``), bulk
loads the participants (COPY) with one phone each and their protocol schedule, starts the
lean fake FCM (`bench/fast_fake_fcm.py`) in its own process (port 18202), then measures:

1. planning: one full `notifications.planning.plan` pass, against its floor — one
   ``INSERT … SELECT … ON CONFLICT DO NOTHING`` that produces the same rows (checked by
   count and checksum);
2. memory of the planning pass (tracemalloc peak) at 10 % and 100 % of the participants;
3. dispatch: the worker's claim/send/record loop over `--messages` due diary reminders,
   `--bundled` of them (10 %) with an infusion reminder due the same minute (one message
   for both), against a bare `firebase_admin.messaging.send_each` of as many messages to
   the same fake (the ratio compares messages per second);
4. the fake's CPU time per message (from /proc), to show it is not the limit.

Prints reminders/s, both ratios and memory. Goals: planning within 5 x its floor, dispatch
at ≥ 80 % of the bare sender's rate, memory flat in the number of participants.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.config import normalise_database_url  # noqa: E402

FAKE_PORT = 18202
BENCH_DAY = date(2026, 12, 1)
PLAN_AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DISPATCH_AT = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai
ZONES = ["Asia/Shanghai"] * 18 + ["America/New_York", "Europe/London"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The highest resident set size seen while a block runs (sampled every 50 ms)."""

    def __enter__(self) -> RssSampler:
        self.start, self.peak, self._stop = rss_mb(), rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the database -----------------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    name = f"bench_reminders_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(url: str, participants: int) -> None:
    """Participants and phones by COPY; schedules and some diary entries by INSERT … SELECT."""
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        site_ids = [r[0] for r in conn.execute("SELECT id FROM sites ORDER BY id")]
        with conn.cursor().copy(
            "COPY participants (study_code, site_id, arm, enrolled_on, timezone, locale, status,"
            " reminder_time, diary_reminder_time, created_at, auth_epoch, version) FROM STDIN"
        ) as copy:
            for n in range(participants):
                copy.write_row(
                    (
                        f"B{n:07d}",
                        site_ids[n % len(site_ids)],
                        "msc" if n % 2 else "control",
                        BENCH_DAY - timedelta(days=n % 1090),
                        ZONES[n % len(ZONES)],
                        "zh-CN" if n % 3 else "en",
                        "active",
                        "09:00",
                        "20:00",
                        now,
                        0,
                        1,
                    )
                )
        ids = [r[0] for r in conn.execute("SELECT id FROM participants ORDER BY id")]
        with conn.cursor().copy(
            "COPY devices (participant_id, token, platform, app_version, active, created_at,"
            " updated_at) FROM STDIN"
        ) as copy:
            for pid in ids:
                copy.write_row(
                    (pid, f"bench-token-{pid:07d}-" + "x" * 140, "android", "1.0", True, now, now)
                )
        conn.execute(
            """
            INSERT INTO schedule_events (participant_id, kind, number, month, planned_date,
                target_date, window_start, window_end, status, updated_at, version)
            SELECT p.id, k.kind, k.number, k.month, t.day, t.day, t.day - 7, t.day + 7,
                   CASE WHEN t.day < %(today)s - 7 THEN 'completed' ELSE 'scheduled' END, now(), 1
            FROM participants p
            JOIN (VALUES ('infusion', 1, 0, 'msc'), ('infusion', 2, 3, 'msc'),
                         ('infusion', 3, 6, 'msc'), ('infusion', 4, 9, 'msc'),
                         ('lab_visit', 1, 0, '*'), ('lab_visit', 2, 3, '*'),
                         ('lab_visit', 3, 6, '*'), ('lab_visit', 4, 9, '*'),
                         ('lab_visit', 5, 12, '*'),
                         ('follow_up', 1, 18, '*'), ('follow_up', 2, 24, '*'),
                         ('follow_up', 3, 30, '*'), ('follow_up', 4, 36, '*'))
                 AS k(kind, number, month, arm) ON k.arm IN (p.arm, '*')
            CROSS JOIN LATERAL
                (SELECT (p.enrolled_on + make_interval(months => k.month))::date) AS t(day)
            """,
            {"today": BENCH_DAY},
        )
        # Today's entry for a third of them: they get no diary reminder.
        conn.execute(
            """
            INSERT INTO diary_entries (participant_id, diary_date, client_entry_id,
                abdominal_distension, decreased_appetite, debilitation, leg_edema,
                discomfort_grade, recorded_at, recorded_offset_minutes, timezone, received_at,
                late, source, version, updated_at)
            SELECT id, (%(at)s::timestamptz AT TIME ZONE timezone)::date, gen_random_uuid(),
                   0, 0, 0, 0, 0, now(), 480, timezone, now(), false, 'participant', 1, now()
            FROM participants WHERE id %% 3 = 0
            """,
            {"at": PLAN_AT},
        )
        conn.execute("ANALYZE")
        conn.commit()


# --- planning and its floor -------------------------------------------------------------------

FLOOR_SQL = """
INSERT INTO reminders (participant_id, kind, target, schedule_event_id, target_date,
    offset_days, due_at, expires_at, status, attempts, created_at, updated_at)
WITH p AS (
    SELECT id, timezone, reminder_time::time AS rt, diary_reminder_time::time AS dt,
           enrolled_on, (:now AT TIME ZONE timezone)::date AS today,
           (:until AT TIME ZONE timezone)::date AS last_day
    FROM participants WHERE status = 'active'
), diary AS (
    SELECT p.id AS participant_id, 'diary' AS kind, 'diary:' || d.day AS target,
           NULL::integer AS schedule_event_id, d.day AS target_date, 0 AS offset_days,
           (d.day + p.dt) AT TIME ZONE p.timezone AS due_at,
           (d.day + 1)::timestamp AT TIME ZONE p.timezone AS expires_at
    FROM p CROSS JOIN LATERAL generate_series(p.today, p.last_day, interval '1 day') AS g(ts)
    CROSS JOIN LATERAL (SELECT g.ts::date) AS d(day)
    WHERE d.day >= p.enrolled_on AND d.day <= p.enrolled_on + interval '36 months'
      AND NOT EXISTS (SELECT 1 FROM diary_entries e
                      WHERE e.participant_id = p.id AND e.diary_date = d.day)
      AND NOT EXISTS (SELECT 1 FROM excused_days x WHERE x.participant_id = p.id AND x.day = d.day)
), ev AS (
    SELECT p.id AS participant_id,
           CASE e.kind WHEN 'infusion' THEN 'infusion' ELSE 'visit' END AS kind,
           'event:' || e.id || ':' || e.target_date AS target, e.id AS schedule_event_id,
           e.target_date, o.off AS offset_days,
           ((e.target_date - o.off) + p.rt) AT TIME ZONE p.timezone AS due_at,
           e.target_date::timestamp AT TIME ZONE p.timezone AS expires_at,
           ((e.target_date - 1) + p.rt) AT TIME ZONE p.timezone AS last_due
    FROM schedule_events e JOIN p ON p.id = e.participant_id
    CROSS JOIN (VALUES (3), (1)) AS o(off)
    WHERE e.status = 'scheduled' AND e.target_date BETWEEN :first AND :last
)
SELECT participant_id, kind, target, schedule_event_id, target_date, offset_days, due_at,
       expires_at, 'planned', 0, :now, :now
FROM (
    SELECT participant_id, kind, target, schedule_event_id, target_date, offset_days,
           due_at, expires_at FROM diary
    UNION ALL
    SELECT participant_id, kind, target, schedule_event_id, target_date, offset_days,
           due_at, expires_at FROM ev WHERE offset_days = 1 OR last_due > :now
) AS wanted
WHERE due_at <= :until AND expires_at > :now AND due_at < expires_at
ON CONFLICT DO NOTHING
"""

CHECKSUM_SQL = """
SELECT count(*), coalesce(sum(hashtext(participant_id || kind || target || offset_days
       || extract(epoch FROM due_at) || extract(epoch FROM expires_at))::bigint), 0)
FROM reminders
"""


def run_floor(db) -> tuple[float, tuple[int, int]]:  # type: ignore[no-untyped-def]
    until = PLAN_AT + timedelta(hours=24)
    params = {
        "now": PLAN_AT,
        "until": until,
        "first": (PLAN_AT - timedelta(days=2)).date(),
        "last": (until + timedelta(days=5)).date(),
    }
    db.session.execute(text("TRUNCATE reminders RESTART IDENTITY CASCADE"))
    db.session.commit()
    started = time.perf_counter()
    db.session.execute(text(FLOOR_SQL), params)
    db.session.commit()
    elapsed = time.perf_counter() - started
    return elapsed, tuple(db.session.execute(text(CHECKSUM_SQL)).one())


def run_plan(db, planning) -> tuple[float, tuple[int, int], object]:  # type: ignore[no-untyped-def]
    db.session.execute(text("TRUNCATE reminders RESTART IDENTITY CASCADE"))
    db.session.commit()
    started = time.perf_counter()
    result = planning.plan(PLAN_AT)
    elapsed = time.perf_counter() - started
    return elapsed, tuple(db.session.execute(text(CHECKSUM_SQL)).one()), result


def planning_memory(db, planning, active: int) -> float:  # type: ignore[no-untyped-def]
    """tracemalloc peak (MB) of one planning pass over the first `active` participants."""
    db.session.execute(text("TRUNCATE reminders RESTART IDENTITY CASCADE"))
    db.session.execute(
        text(
            "UPDATE participants SET status = CASE WHEN id <= :n THEN 'active' ELSE 'completed' END"
        ),
        {"n": active},
    )
    db.session.commit()
    tracemalloc.start()
    try:
        planning.plan(PLAN_AT)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
        db.session.execute(text("UPDATE participants SET status = 'active'"))
        db.session.commit()


# --- dispatch and the bare sender -------------------------------------------------------------


def make_due(db, count: int, bundled: float) -> int:  # type: ignore[no-untyped-def]
    """`count` due diary reminders, one per participant (first `count` participants), and
    for a `bundled` share of them an infusion reminder due the same minute (a bundle);
    returns the number of reminders."""
    db.session.execute(text("TRUNCATE reminders RESTART IDENTITY CASCADE"))
    db.session.execute(text("DELETE FROM diary_entries"))  # every one of them is still due
    db.session.execute(
        text(
            """
            INSERT INTO reminders (participant_id, kind, target, target_date, offset_days,
                due_at, expires_at, status, attempts, created_at, updated_at)
            SELECT id, 'diary', 'diary:' || :day, :day, 0, :due, :expires, 'planned', 0, :due, :due
            FROM participants ORDER BY id LIMIT :n
            """
        ),
        {
            "day": BENCH_DAY,
            "due": DISPATCH_AT - timedelta(minutes=30),
            "expires": DISPATCH_AT + timedelta(hours=3),
            "n": count,
        },
    )
    every = round(1 / bundled) if bundled > 0 else 0
    if every:
        db.session.execute(
            text(
                """
                INSERT INTO reminders (participant_id, kind, target, target_date, offset_days,
                    due_at, expires_at, status, attempts, created_at, updated_at)
                SELECT id, 'infusion', 'event:bench:' || id, :day, 1, :due, :expires,
                    'planned', 0, :due, :due
                FROM (SELECT id FROM participants ORDER BY id LIMIT :n) AS first
                WHERE id % :every = 0
                """
            ),
            {
                "day": BENCH_DAY + timedelta(days=1),
                "due": DISPATCH_AT - timedelta(minutes=30),
                "expires": DISPATCH_AT + timedelta(hours=3),
                "n": count,
                "every": every,
            },
        )
    db.session.commit()
    return db.session.execute(text("SELECT count(*) FROM reminders")).scalar_one()


def fake_stats(reset: bool = False) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", FAKE_PORT, timeout=30)
    conn.request("DELETE" if reset else "GET", "/stats")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def bare_send_each(app_fb, count: int) -> float:  # type: ignore[no-untyped-def]
    """firebase-admin alone: `count` prebuilt messages through send_each, 500 at a time."""
    import warnings

    from firebase_admin import messaging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        messages = [
            messaging.Message(
                token=f"bare-token-{n}",
                notification=messaging.Notification(
                    title="症状日记", body="请填写今天的症状日记。"
                ),
                data={"reminder_id": str(n), "kind": "diary"},
                android=messaging.AndroidConfig(collapse_key=str(n), ttl=3600),
                apns=messaging.APNSConfig(headers={"apns-collapse-id": str(n)}),
            )
            for n in range(count)
        ]
    started = time.perf_counter()
    failures = 0
    for i in range(0, count, 500):
        failures += messaging.send_each(messages[i : i + 500], app=app_fb).failure_count
    elapsed = time.perf_counter() - started
    assert failures == 0, failures
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid`, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--bundled", type=float, default=0.1, help="share of bundled messages")
    args = parser.parse_args()
    admin_url = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    log(f"load average at start: {load()} (2 cores, shared)")
    url = create_database(admin_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench_reminders_"))
    service_account = workdir / "service-account.json"
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_fcm",
            "--port",
            str(FAKE_PORT),
            "--service-account",
            str(service_account),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None and "fake FCM" in fake.stdout.readline()
        os.environ.update(
            {
                "DATABASE_URL": url,
                "AUTO_MIGRATE": "0",
                "FCM_CREDENTIALS": str(service_account),
                "FCM_ENDPOINT": f"http://127.0.0.1:{FAKE_PORT}",
                "FCM_BATCH_SIZE": "500",
                "REMINDER_LEASE_SECONDS": "600",
            }
        )
        figures = run(url, args, fake.pid)
    finally:
        fake.terminate()
        fake.wait()
        drop_database(admin_url, url)
    log(f"load average at end: {load()}")
    print(json.dumps(figures, indent=2))


def run(url: str, args: argparse.Namespace, fake_pid: int) -> dict:
    import flask_migrate

    from api import MIGRATIONS_DIR, create_app
    from api.extensions import db
    from api.services.sites import ensure_sites
    from notifications import planning
    from notifications.worker import Worker

    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": normalise_database_url(url), "AUTO_MIGRATE": False}
    )
    with app.app_context():
        flask_migrate.upgrade(directory=MIGRATIONS_DIR)
        ensure_sites(app.extensions["study"])
        db.session.commit()
    started = time.perf_counter()
    seed(url, args.participants)
    log(f"seeded {args.participants} participants in {time.perf_counter() - started:.1f} s")
    figures: dict = {"participants": args.participants, "messages": args.messages}
    with app.app_context():
        db.session.execute(text("SELECT count(*) FROM schedule_events")).scalar()
        floor_s, floor_sum = run_floor(db)  # run twice, the faster counts: a strict floor
        floor_s = min(floor_s, run_floor(db)[0])
        plan_s, plan_sum, result = run_plan(db, planning)
        log(
            f"floor: {floor_sum[0]} rows in {floor_s:.2f} s; "
            f"plan: {plan_sum[0]} rows in {plan_s:.2f} s"
        )
        log(f"plan: {result.describe()}")
        assert plan_sum == floor_sum, f"planning and its floor disagree: {plan_sum} vs {floor_sum}"
        figures["planning"] = {
            "rows": plan_sum[0],
            "seconds": round(plan_s, 2),
            "reminders_per_s": round(plan_sum[0] / plan_s),
            "floor_seconds": round(floor_s, 2),
            "ratio_to_floor": round(plan_s / floor_s, 2),
        }
        small = max(1, args.participants // 10)
        figures["planning_memory_mb"] = {
            f"{small}_participants": round(planning_memory(db, planning, small), 1),
            f"{args.participants}_participants": round(
                planning_memory(db, planning, args.participants), 1
            ),
        }
        log(f"planning memory (tracemalloc peak): {figures['planning_memory_mb']}")
        due = make_due(db, min(args.messages, args.participants), args.bundled)
    worker = Worker(app, worker_id="bench", clock=lambda: DISPATCH_AT)
    fake_stats(reset=True)
    fake_cpu = cpu_seconds(fake_pid)
    with RssSampler() as rss, app.app_context():
        started = time.perf_counter()
        counts = worker.dispatch()
        dispatch_s = time.perf_counter() - started
    stats = fake_stats()
    fake_cpu_per_message = (cpu_seconds(fake_pid) - fake_cpu) / max(1, stats["messages"])
    sent, messages = counts["sent"], stats["messages"]
    log(f"dispatch: {dict(counts)} in {dispatch_s:.1f} s; fake saw {stats}")
    assert sent == due and stats["repeats"] == 0, (counts, stats)
    assert messages == min(args.messages, args.participants), (messages, due)
    bare_s = bare_send_each(worker.sender.app, args.messages)
    dispatch_rate, bare_rate = messages / dispatch_s, args.messages / bare_s
    log(f"bare send_each: {args.messages} in {bare_s:.1f} s")
    capacity = 1 / fake_cpu_per_message if fake_cpu_per_message else float("inf")
    figures["dispatch"] = {
        "reminders": sent,
        "messages": messages,
        "seconds": round(dispatch_s, 1),
        "reminders_per_s": round(sent / dispatch_s),
        "messages_per_s": round(dispatch_rate),
        "bare_send_each_seconds": round(bare_s, 1),
        "bare_messages_per_s": round(bare_rate),
        "ratio_to_bare": round(dispatch_rate / bare_rate, 3),
        "rss_start_mb": round(rss.start),
        "rss_peak_mb": round(rss.peak),
    }
    figures["fake_fcm_cpu_us_per_message"] = round(fake_cpu_per_message * 1e6)
    figures["fake_fcm_ceiling_per_core_per_s"] = round(capacity)
    figures["process_peak_rss_mb"] = round(hwm_mb())
    plan = figures["planning"]
    print(
        f"\nplanning: {plan['rows']} reminders in {plan['seconds']} s "
        f"= {plan['reminders_per_s']}/s; "
        f"floor {plan['floor_seconds']} s; ratio {plan['ratio_to_floor']} (goal ≤ 5)\n"
        f"dispatch: {sent} reminders as {messages} messages in {dispatch_s:.1f} s "
        f"= {dispatch_rate:.0f} messages/s; bare send_each "
        f"{bare_rate:.0f}/s; ratio {dispatch_rate / bare_rate:.1%} (goal ≥ 80 %)\n"
        f"memory: planning peak {figures['planning_memory_mb']} MB; dispatch RSS "
        f"{rss.start:.0f} → {rss.peak:.0f} MB; process peak {hwm_mb():.0f} MB\n"
        f"fake FCM: {fake_cpu_per_message * 1e6:.0f} µs CPU per message = ceiling "
        f"{capacity:.0f} messages/s per core"
    )
    return figures


if __name__ == "__main__":
    main()
