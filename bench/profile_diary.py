"""Profile: where the server's time of one diary submit goes, in-process, against the floor.

    .venv/bin/python bench/profile_diary.py [--submits 600] [--top 25] [--sync]

Uses the diary benchmark's set-up (bench/diary_submit.py: a PostgreSQL database of its
own, dropped at the end; participants with tokens and chain heads). In one process it
runs, through Flask's test client and one at a time:

- the floor (`bench/floor_app.py`: decode the token, insert one row), the same floor
  app writing a submit's rows (`/floor/diary-rows`) and the service's
  `POST /api/v1/me/diary-entries`, in alternating blocks, reporting the CPU of this
  thread per request (ms) for each: the figure the goal (<= 2 ms per submit) is about.
  Twice: through the test client (its building of the request and reading of the
  answer included), and in the WSGI app alone (the request's environ built before the
  clock starts): the server's own CPU, with PostgreSQL's CPU and the time in Python's
  garbage collector per request beside it;
- the service against itself with the hash chain off (`AUDIT_CHAIN=False`), CPU, wall
  time and PostgreSQL's CPU per submit in the WSGI app, one request at a time;
- then the service's submits again under cProfile, printing the functions with the most
  time of their own, the project's functions by cumulative time and the time by area
  (chain, auth, schemas, ORM, Core, driver, ...), as shares of the profiled run.

With `--sync` the profiled run is `POST /me/diary-entries/sync` with 100 entries per call.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import diary_submit as bench  # noqa: E402

BLOCK = 50
# Where a function's time is counted, by the first matching piece of its file path.
AREAS = (
    ("api/chain", "chain (api/chain*)"),
    ("api/auth", "auth (api/auth.py)"),
    ("api/services", "services"),
    ("api/schemas", "schemas (project)"),
    ("api/", "api (other)"),
    ("marshmallow", "marshmallow"),
    ("flask_smorest", "flask-smorest"),
    ("webargs", "webargs"),
    ("sqlalchemy/orm", "SQLAlchemy ORM"),
    ("sqlalchemy", "SQLAlchemy Core/engine"),
    ("psycopg", "psycopg (driver)"),
    ("jwt", "PyJWT"),
    ("werkzeug", "werkzeug"),
    ("flask", "flask"),
    ("hashlib", "hashing"),
    ("json", "json"),
)


class GcClock:
    """The time this process spends in the cyclic garbage collector (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started


GC = GcClock()


class Load:
    """Requests against one app: each a new (participant, day), checked for its status."""

    def __init__(self, app: Any, path: str, slots: list[str], recorded_at: str) -> None:
        self.app = app
        self.client = app.test_client()
        self.path = path
        self.slots = iter(slots)
        self.recorded_at = recorded_at
        self.wall_ms = 0.0  # of the last server_block, per request
        self.db_ms = 0.0  # PostgreSQL's CPU in the last server_block, per request
        self.gc_ms = 0.0  # time in the garbage collector in the last server_block, per request

    def one(self) -> None:
        token, day = next(self.slots).split()
        response = self.client.post(
            self.path,
            json=bench.entry_body(day, self.recorded_at),
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code != 201:
            raise SystemExit(f"{self.path}: {response.status_code} {response.get_data()!r}")

    def sync(self, token: str, days: list[str]) -> None:
        response = self.client.post(
            self.path + "/sync",
            json={"entries": [bench.entry_body(day, self.recorded_at) for day in days]},
            headers={"Authorization": f"Bearer {token}"},
        )
        statuses = {r["status"] for r in response.get_json()["results"]}
        if response.status_code != 200 or statuses != {"created"}:
            raise SystemExit(f"sync: {response.status_code} {statuses}")

    def block(self, count: int) -> float:
        """CPU of this thread per request, in ms (the test client's work included)."""
        started = time.thread_time()
        for _ in range(count):
            self.one()
        return (time.thread_time() - started) * 1000 / count

    def server_block(self, count: int) -> float:
        """CPU of this thread per request in the WSGI app alone, in ms: each request's
        environ is built before the clock starts, and the answer is only drained."""
        environs = self.environs(count)
        database = bench.database_cpu()
        gc_before = GC.total
        started, wall_started = time.thread_time(), time.perf_counter()
        self.send(environs)
        elapsed = time.thread_time() - started
        self.gc_ms = (GC.total - gc_before) * 1000 / count
        self.wall_ms = (time.perf_counter() - wall_started) * 1000 / count
        self.db_ms = sum(bench.database_cpu_since(database).values()) * 1000 / count
        return elapsed * 1000 / count

    def environs(self, count: int) -> list[dict[str, Any]]:
        """The WSGI environs of the next `count` submits, to send later (`send`)."""
        return [self._environ() for _ in range(count)]

    def send(self, environs: list[dict[str, Any]]) -> None:
        """Each environ through the WSGI app, its answer drained; every one must be 201."""
        statuses: list[str] = []

        def start_response(status: str, _headers: Any, _exc_info: Any = None) -> None:
            statuses.append(status)

        for environ in environs:
            answer = self.app(environ, start_response)
            for _chunk in answer:
                pass
            getattr(answer, "close", lambda: None)()
        if any(not status.startswith("201") for status in statuses):
            raise SystemExit(f"{self.path}: {sorted(set(statuses))}")

    def _environ(self) -> dict[str, Any]:
        token, day = next(self.slots).split()
        builder = EnvironBuilder(
            path=self.path,
            method="POST",
            json=bench.entry_body(day, self.recorded_at),
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            environ: dict[str, Any] = builder.get_environ()
            return environ
        finally:
            builder.close()


def area_of(filename: str) -> str:
    for piece, area in AREAS:
        if piece in filename:
            return area
    return "other (stdlib, ...)"


def print_profile(profile: cProfile.Profile, requests: int, top: int) -> None:
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    raw = stats.stats  # type: ignore[attr-defined]
    each = total * 1000 / requests
    print(f"\nprofiled: {requests} requests, {each:.2f} ms each (CPU, profiler on)")
    areas: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in raw.items():
        areas[area_of(filename)] += tt
    print("\ntime by area (own time of the functions in it):")
    for area, tt in sorted(areas.items(), key=lambda item: -item[1]):
        print(f"  {tt / total * 100:5.1f} %  {tt * 1000 / requests:6.3f} ms  {area}")

    def label(key: tuple[str, int, str]) -> str:
        filename, line, name = key
        short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        return f"{short}:{line}({name})"

    print(f"\ntop {top} by own time:")
    for key, (_cc, calls, tt, _ct, _callers) in sorted(raw.items(), key=lambda i: -i[1][2])[:top]:
        print(f"  {tt / total * 100:5.1f} %  {calls / requests:6.1f} calls/req  {label(key)}")
    print(f"\ntop {top} project functions by cumulative time:")
    project = [(k, v) for k, v in raw.items() if str(ROOT / "api") in k[0]]
    for key, (_cc, calls, _tt, ct, _callers) in sorted(project, key=lambda i: -i[1][3])[:top]:
        print(f"  {ct / total * 100:5.1f} %  {calls / requests:6.1f} calls/req  {label(key)}")


def sync_batches(app: Any, count: int) -> list[tuple[str, list[str]]]:
    """Participants whose phones each queued 100 days (token, days), for `/sync`.

    The study's back-fill window (a few days) would refuse most of 100 queued days, so
    this benchmark's app widens it: what is measured is storing, not refusing.
    """
    from dataclasses import replace
    from datetime import UTC, timedelta

    from sqlalchemy import insert, select, text

    from api.auth import PARTICIPANT, issue_access_token
    from api.extensions import db
    from api.models import Participant, Site

    app.extensions["study"] = replace(app.extensions["study"], backfill_days=200)
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(bench.ZONE)).date()
    with app.app_context():
        site_id = db.session.scalar(select(Site.id).where(Site.code == "BJ302"))
        rows = [
            {
                "study_code": f"SYNC-{n:06d}",
                "site_id": site_id,
                "arm": "msc",
                "enrolled_on": today - timedelta(days=150),
                "timezone": bench.ZONE,
                "locale": "zh-CN",
                "status": "active",
                "reminder_time": "09:00",
                "diary_reminder_time": "20:00",
                "created_at": now,
                "auth_epoch": 0,
                "version": 1,
            }
            for n in range(count)
        ]
        ids = db.session.scalars(insert(Participant).returning(Participant.id), rows).all()
        db.session.execute(
            text(
                "INSERT INTO chain_heads (chain_key, seq, head_hash) "
                "SELECT 'participant:' || id, 0, :genesis FROM participants "
                "WHERE study_code LIKE 'SYNC-%'"
            ),
            {"genesis": "0" * 64},
        )
        db.session.commit()
        tokens = [issue_access_token("participant", pid, PARTICIPANT, 0)[0] for pid in ids]
    days = [(today - timedelta(days=back)).isoformat() for back in range(100)]
    return [(token, days) for token in tokens]


def make_apps(url: str, secret: str) -> tuple[Any, Any, Any]:
    """The service, the floor and the service with the hash chain off."""
    os.environ.update(DATABASE_URL=url, JWT_SECRET=secret)
    from api import create_app
    from bench import floor_app

    floor_app.SECRET = secret  # imported by the set-up before the secret was known

    config = {
        "APP_ENV": "production",
        "SQLALCHEMY_DATABASE_URI": url,
        "AUTO_MIGRATE": False,
        "JWT_SECRET": secret,
    }
    return create_app(config), floor_app.app, create_app({**config, "AUDIT_CHAIN": False})


def cpu_against_floor(url: str, service: Load, rows_floor: Load, floor: Load, blocks: int) -> None:
    """CPU per request of the service and of the floor app (bare, and writing a submit's
    rows), alternating blocks; in the WSGI app alone, PostgreSQL's CPU per request too."""
    loads = {"diary submit": service, "floor, diary rows": rows_floor, "floor": floor}
    for load in loads.values():
        load.block(BLOCK)  # warm-up: connections, caches, compiled statements
    for label, measure in (
        ("with the test client's work", Load.block),
        ("in the WSGI app alone", Load.server_block),
    ):
        cpu: dict[str, list[float]] = {name: [] for name in loads}
        database: dict[str, list[float]] = {name: [] for name in loads}
        collector: dict[str, list[float]] = {name: [] for name in loads}
        for n in range(blocks):
            bench.analyze_diary_tables(url)  # plans for the tables as they now are
            turn = list(loads.items())
            for name, load in turn if n % 2 == 0 else turn[::-1]:
                cpu[name].append(measure(load, BLOCK))
                database[name].append(load.db_ms)
                collector[name].append(load.gc_ms)
        print(f"\nCPU per request {label}, median of {blocks} blocks of {BLOCK}:")
        for name in loads:
            line = f"  {name:<18} {statistics.median(cpu[name]):.2f} ms"
            if measure is Load.server_block:
                line += f"   PostgreSQL {statistics.median(database[name]):.2f} ms"
                # The mean: a full collection falls in one block of several.
                line += f"   garbage collector {statistics.fmean(collector[name]):.3f} ms"
            print(line)
        diary = statistics.median(cpu["diary submit"])
        base = statistics.median(cpu["floor"])
        print(f"  diary submit / floor = {diary / base:.2f}")
        print(f"  goal <= 2 ms per submit: {'met' if diary <= 2 else 'NOT met'}")


def chain_against_off(url: str, service: Load, off: Load, blocks: int) -> None:
    """The hash chain's cost in-process, one request at a time: the WSGI app's CPU and
    wall time per submit, against the same service with `AUDIT_CHAIN` off (alternating)."""
    off.block(BLOCK)  # warm-up
    cpu: dict[str, list[float]] = {"chain on": [], "chain off": []}
    wall: dict[str, list[float]] = {"chain on": [], "chain off": []}
    database: dict[str, list[float]] = {"chain on": [], "chain off": []}
    for n in range(blocks):
        bench.analyze_diary_tables(url)
        pair = [("chain on", service), ("chain off", off)]
        for name, load in pair if n % 2 == 0 else pair[::-1]:
            cpu[name].append(load.server_block(BLOCK))
            wall[name].append(load.wall_ms)
            database[name].append(load.db_ms)
    print(f"\nthe hash chain, in the WSGI app alone, median of {blocks} blocks of {BLOCK}:")
    for name in cpu:
        cpu_ms, wall_ms = statistics.median(cpu[name]), statistics.median(wall[name])
        db_ms = statistics.median(database[name])
        print(
            f"  {name:9}  CPU {cpu_ms:.2f} ms   wall {wall_ms:.2f} ms   PostgreSQL {db_ms:.2f} ms"
        )
    share = 1 - statistics.median(wall["chain off"]) / statistics.median(wall["chain on"])
    print(f"  the chain's share of the wall time: {share * 100:.0f} %")


def sync_against_single(url: str, service: Load, batches: list[tuple[str, list[str]]]) -> None:
    """Entries stored per second: sync calls of 100 against single submits, alternating."""
    rates: dict[str, list[float]] = {"single": [], "sync": []}
    for n, (token, days) in enumerate(batches):
        bench.analyze_diary_tables(url)
        order = ("single", "sync") if n % 2 == 0 else ("sync", "single")
        for kind in order:
            started = time.perf_counter()
            if kind == "sync":
                service.sync(token, days)
            else:
                for _ in range(len(days)):
                    service.one()
            rates[kind].append(len(days) / (time.perf_counter() - started))
    single, synced = (statistics.median(rates[k]) for k in ("single", "sync"))
    print(f"\nentries stored per second, one request at a time, median of {len(batches)}:")
    ratio = synced / single
    print(f"  single submits {single:.0f}/s   sync of 100 {synced:.0f}/s   = {ratio:.2f} x")
    print(f"  goal >= 3 x: {'met' if synced >= 3 * single else 'NOT met'}")


def print_statements(app: Any, service: Load) -> None:
    """The SQL one submit sends, in order (each one a round trip to the database)."""
    from sqlalchemy import event

    from api.extensions import db

    with app.app_context():
        engine = db.engine
    sent: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split())[:110])

    event.listen(engine, "before_cursor_execute", note)
    service.one()
    event.remove(engine, "before_cursor_execute", note)
    print(f"\nstatements of one submit ({len(sent)}, plus BEGIN/COMMIT):")
    for statement in sent:
        print(f"  {statement}")


def run(url: str, secret: str, slots: list[str], args: argparse.Namespace) -> None:
    app, floor_app, chain_off_app = make_apps(url, secret)
    recorded_at = datetime.now(ZoneInfo(bench.ZONE)).isoformat(timespec="seconds")
    quarter = len(slots) // 4
    service, rows_floor, floor, chain_off = (
        Load(target, path, slots[n * quarter : (n + 1) * quarter], recorded_at)
        for n, (target, path) in enumerate(
            (
                (app, bench.DIARY_PATH),
                (floor_app, bench.ROWS_FLOOR_PATH),
                (floor_app, "/floor"),
                (chain_off_app, bench.DIARY_PATH),
            )
        )
    )
    cpu_against_floor(url, service, rows_floor, floor, max(2, args.submits // BLOCK))
    chain_against_off(url, service, chain_off, max(2, args.submits // BLOCK // 2))
    batches = sync_batches(app, args.syncs + max(1, args.submits // 100))
    sync_against_single(url, service, batches[: args.syncs])
    print_statements(app, service)
    # CPU time, not wall time: what the serving thread itself spends (waiting for the
    # database is the database's share, seen in the wall-time benchmarks).
    profile = cProfile.Profile(time.thread_time)
    if args.sync:
        profiled = batches[args.syncs :]
        profile.enable()
        for token, days in profiled:
            service.sync(token, days)
        profile.disable()
        print_profile(profile, 100 * len(profiled), args.top)
    else:
        profile.enable()
        for _ in range(args.submits):
            service.one()
        profile.disable()
        print_profile(profile, args.submits, args.top)
    if args.dump:
        profile.dump_stats(args.dump)
        print(f"\nprofile written to {args.dump} (pstats; e.g. print_callees)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submits", type=int, default=600, help="requests per measured part")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sync", action="store_true", help="profile /sync (100 per call)")
    parser.add_argument("--syncs", type=int, default=6, help="sync calls against single submits")
    parser.add_argument("--dump", help="also write the profile to this file (pstats format)")
    args = parser.parse_args()
    participants = max(1000, args.submits * 7 + args.syncs * 40)
    secret = secrets.token_urlsafe(48)
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    with bench.bench_database() as url, tempfile.TemporaryDirectory() as tmp:
        slots_file = Path(tmp) / "slots.txt"
        print(f"preparing {participants} participants ... (load average {load})", flush=True)
        bench.prepare(url, secret, participants, slots_file)
        run(url, secret, slots_file.read_text().splitlines(), args)
    print("\nload average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
