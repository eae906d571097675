"""Sustained load: 200 phones and 5 coordinators against gunicorn on PostgreSQL, worker running.

    .venv/bin/python bench/soak.py [--minutes 10] [--phones 200] [--coordinators 5]

Self-contained: makes its own PostgreSQL database (dropped at the end), enrols the
participants through the domain layer with 40 days of diary history, starts the server
(gunicorn) and the reminder worker (`flask --app wsgi notifications run`, no Firebase
credentials: it records and logs what it would send), then runs for the set time:
- each phone acts about every 2 s (uniform 1 to 3 s think time): submits today's entry
  (created, or replayed / conflict when it already has one), syncs its last three days,
  or reads its diary, profile, schedule or notifications;
- each coordinator, about every 5 s, reads the compliance report of one of its sites,
  the open alerts, or streams the site's CSV export.
It prints requests, errors (5xx, transport failures and unexpected 4xx), p50/p99 by
endpoint and the server's memory at start and end. Goal: zero errors, p99 < 100 ms for
phone requests, memory growth < 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.diary_submit import Server, bench_database  # noqa: E402

ZONE = "Asia/Shanghai"
PORT = 18020
SITES = ("BJ302", "LZU1", "HNBOAO", "LYG1", "TJSH", "XA323")
HISTORY_DAYS = 40
PHONE_GROUPS = {
    "POST /me/diary-entries": "phone",
    "POST /me/diary-entries/sync": "phone",
    "GET /me/diary-entries": "phone",
    "GET /me": "phone",
    "GET /me/schedule": "phone",
    "GET /me/notifications": "phone",
}


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def record(self, name: str, seconds: float, ok: bool, detail: str) -> None:
        self.latencies[name].append(seconds)
        if not ok:
            self.errors[name] += 1
            if len(self.samples) < 10:
                self.samples.append(f"{name}: {detail}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def prepare(url: str, secret: str, phones: int, coordinators: int) -> tuple[list, list]:
    """Enrol participants with diary history; returns (phone tokens, coordinator tokens+sites)."""
    from api import create_app
    from api.auth import PARTICIPANT, issue_access_token
    from api.extensions import db
    from api.services import diary, participants
    from api.services.staff import add_staff

    app = create_app(
        {
            "APP_ENV": "production",
            "SQLALCHEMY_DATABASE_URI": url,
            "AUTO_MIGRATE": True,
            "JWT_SECRET": secret,
            "ACCESS_TOKEN_TTL": timedelta(hours=6),
        }
    )
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    rng = random.Random(7)
    phone_tokens, staff = [], []
    with app.app_context():
        from sqlalchemy import select

        from api.models import Site

        sites = {s.code: s for s in db.session.scalars(select(Site))}
        coordinator_ids = []
        for n in range(coordinators):
            own = [SITES[n % 6], SITES[(n + 1) % 6]] if n < coordinators - 1 else list(SITES[:2])
            person = add_staff(f"soak{n}@example.org", "coordinator", own, secrets.token_hex(16))
            coordinator_ids.append((person, own))
        db.session.commit()
        for n in range(phones):
            enrolment = participants.enrol(
                ("system", None),
                site=sites[SITES[n % 6]],
                arm="msc" if n % 2 else "control",
                enrolled_on=today - timedelta(days=HISTORY_DAYS),
                timezone=ZONE,
                locale="zh-CN" if n % 3 else "en",
            )
            person = enrolment.participant
            actor = ("staff", coordinator_ids[0][0].id)
            for back in range(HISTORY_DAYS, 2, -1):
                if rng.random() < 0.1:
                    continue  # a missed day
                grade = rng.choices([0, 1, 2, 3], weights=[60, 25, 12, 3])[0]
                diary.submit(
                    person,
                    {
                        "diary_date": today - timedelta(days=back),
                        "client_entry_id": uuid.uuid4(),
                        "abdominal_distension": rng.randint(0, 3),
                        "decreased_appetite": rng.randint(0, 3),
                        "debilitation": rng.randint(0, 3),
                        "leg_edema": rng.randint(0, 2),
                        "discomfort_grade": grade,
                        "recorded_at": now - timedelta(days=back),
                    },
                    actor,
                    now,
                    app.extensions["study"],
                    reason="paper diary entered by the site",
                )
            db.session.commit()
            phone_tokens.append(issue_access_token("participant", person.id, PARTICIPANT, 0)[0])
        for person, own in coordinator_ids:
            token = issue_access_token("staff", person.id, "coordinator", 0)[0]
            staff.append((token, own))
        db.engine.dispose()
    return phone_tokens, staff


def entry_body(day: str) -> dict:
    return {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": day,
        "abdominal_distension": random.randint(0, 3),
        "decreased_appetite": random.randint(0, 3),
        "debilitation": random.randint(0, 3),
        "leg_edema": random.randint(0, 2),
        "discomfort_grade": random.choice([0, 0, 1, 1, 2]),
        "recorded_at": datetime.now(ZoneInfo(ZONE)).isoformat(timespec="seconds"),
    }


async def call(
    session: aiohttp.ClientSession,
    stats: Stats,
    name: str,
    method: str,
    url: str,
    expected: set[int],
    **kwargs,
) -> None:
    started = time.perf_counter()
    try:
        async with session.request(method, url, **kwargs) as response:
            await response.read()
            ok, detail = response.status in expected, f"HTTP {response.status}"
    except (TimeoutError, aiohttp.ClientError) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    stats.record(name, time.perf_counter() - started, ok, detail)


def _connector() -> aiohttp.TCPConnector:
    """Idle connections are dropped after 1 s, before gunicorn's 2 s keep-alive closes
    them: a request sent on a connection the server is closing would be reset, a
    transport race of the benchmark's own making (the first run counted 19 such resets
    on POSTs, which aiohttp does not retry)."""
    return aiohttp.TCPConnector(keepalive_timeout=1.0)


async def phone(base: str, token: str, stats: Stats, stop: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    today = datetime.now(ZoneInfo(ZONE)).date()
    days = [(today - timedelta(days=back)).isoformat() for back in range(3)]
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(
        base, headers=headers, timeout=timeout, connector=_connector()
    ) as session:
        await asyncio.sleep(random.uniform(0, 2))
        while time.monotonic() < stop:
            roll = random.random()
            if roll < 0.3:
                body = entry_body(days[0])
                await call(
                    session,
                    stats,
                    "POST /me/diary-entries",
                    "POST",
                    "/api/v1/me/diary-entries",
                    {200, 201, 409},
                    json=body,
                )
            elif roll < 0.45:
                batch = {"entries": [entry_body(day) for day in days]}
                await call(
                    session,
                    stats,
                    "POST /me/diary-entries/sync",
                    "POST",
                    "/api/v1/me/diary-entries/sync",
                    {200},
                    json=batch,
                )
            elif roll < 0.7:
                await call(
                    session,
                    stats,
                    "GET /me/diary-entries",
                    "GET",
                    "/api/v1/me/diary-entries",
                    {200},
                )
            elif roll < 0.8:
                await call(session, stats, "GET /me", "GET", "/api/v1/me", {200})
            elif roll < 0.9:
                await call(session, stats, "GET /me/schedule", "GET", "/api/v1/me/schedule", {200})
            else:
                await call(
                    session,
                    stats,
                    "GET /me/notifications",
                    "GET",
                    "/api/v1/me/notifications",
                    {200},
                )
            await asyncio.sleep(random.uniform(1, 3))


async def coordinator(base: str, token: str, sites: list[str], stats: Stats, stop: float) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base, headers=headers, timeout=timeout, connector=_connector()
    ) as session:
        while time.monotonic() < stop:
            site = random.choice(sites)
            roll = random.random()
            if roll < 0.5:
                await call(
                    session,
                    stats,
                    "GET /compliance",
                    "GET",
                    "/api/v1/compliance",
                    {200},
                    params={"site": site},
                )
            elif roll < 0.8:
                await call(
                    session,
                    stats,
                    "GET /alerts",
                    "GET",
                    "/api/v1/alerts",
                    {200},
                    params={"status": "open", "site": site},
                )
            else:
                await call(
                    session,
                    stats,
                    "GET /exports/diary-entries.csv",
                    "GET",
                    "/api/v1/exports/diary-entries.csv",
                    {200},
                    params={"site": site},
                )
            await asyncio.sleep(random.uniform(3, 7))


async def run_load(base: str, phones: list[str], staff: list, seconds: float) -> Stats:
    stats = Stats()
    stop = time.monotonic() + seconds
    tasks = [phone(base, token, stats, stop) for token in phones]
    tasks += [coordinator(base, token, sites, stats, stop) for token, sites in staff]
    await asyncio.gather(*tasks)
    return stats


def report(stats: Stats, seconds: float, rss_start: int, rss_end: int, worker_ok: bool) -> None:
    total = sum(len(v) for v in stats.latencies.values())
    errors = sum(stats.errors.values())
    print(f"\n{total} requests in {seconds:.0f} s ({total / seconds:.1f}/s), {errors} errors")
    print(f"{'endpoint':34} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}")
    phone_latencies: list[float] = []
    for name in sorted(stats.latencies):
        values = stats.latencies[name]
        if name in PHONE_GROUPS:
            phone_latencies += values
        print(
            f"{name:34} {len(values):>9} {stats.errors[name]:>7} "
            f"{percentile(values, 0.5) * 1000:>8.1f} {percentile(values, 0.99) * 1000:>8.1f}"
        )
    print(
        f"{'all phone requests':34} {len(phone_latencies):>9} {'':>7} "
        f"{percentile(phone_latencies, 0.5) * 1000:>8.1f} "
        f"{percentile(phone_latencies, 0.99) * 1000:>8.1f}"
    )
    growth = (rss_end - rss_start) / rss_start * 100 if rss_start else 0.0
    print(
        f"server memory: {rss_start / 1024:.1f} MiB at start, {rss_end / 1024:.1f} MiB at end "
        f"({growth:+.1f} %)"
    )
    print(f"worker still running at the end: {worker_ok}")
    for sample in stats.samples:
        print("  error sample:", sample)
    print(
        "goals: zero errors {}; phone p99 < 100 ms {}; memory growth < 10 % {}".format(
            "met" if errors == 0 else "NOT met",
            "met" if percentile(phone_latencies, 0.99) < 0.1 else "NOT met",
            "met" if growth < 10 else "NOT met",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--coordinators", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    secret = secrets.token_urlsafe(48)
    with bench_database() as url:
        print(
            f"preparing {args.phones} participants with {HISTORY_DAYS} days of diary ...",
            flush=True,
        )
        phones, staff = prepare(url, secret, args.phones, args.coordinators)
        env = {
            **os.environ,
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "JWT_SECRET": secret,
            "ACCESS_TOKEN_TTL_SECONDS": str(6 * 3600),
            "AUTO_MIGRATE": "0",
        }
        server = Server("wsgi:app", PORT, env, args)
        worker_log = open(ROOT / "bench" / "soak-worker.log", "w")  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "notifications", "run"],
            env=env,
            cwd=ROOT,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{PORT}"
            asyncio.run(run_load(base, phones, staff, 20))  # warm-up, not counted
            rss_start = server.rss_kb()
            seconds = args.minutes * 60
            print(
                f"soak: {seconds:.0f} s, {len(phones)} phones, {len(staff)} coordinators",
                flush=True,
            )
            stats = asyncio.run(run_load(base, phones, staff, seconds))
            rss_end = server.rss_kb()
            worker_ok = worker.poll() is None
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            worker_log.close()
            server.stop()
        report(stats, seconds, rss_start, rss_end, worker_ok)


if __name__ == "__main__":
    main()
