"""Benchmark: diary submissions through gunicorn on PostgreSQL, against a bare floor.

    .venv/bin/python bench/diary_submit.py [--rounds 3] [--duration 10] [--workers 4]
        [--worker-class gthread] [--threads 2] [--chain-off] [--diary-rows]

Self-contained: makes its own PostgreSQL database (`bench_diary_<random>`, dropped at the
end), migrates it, creates participants and access tokens, starts two servers with the
same gunicorn settings
- the service (`gunicorn wsgi:app`), load on `POST /api/v1/me/diary-entries`,
- the floor (`gunicorn bench.floor_app:app`: decode the token, insert one row),
- with `--chain-off`, the service without the hash chain (`bench.chain_off_app:app`),
  whose figures give the chain's share of the wall time (use `--participants 100000`),
- with `--diary-rows`, the floor app writing the rows a diary submit must write
  (`POST /floor/diary-rows`: the participant re-read, the entry, its version and its
  chained audit row, with none of the service's code): the database's share,
and runs `wrk` (C, from Debian's `wrk` package) at 10 and at 50 connections for a bounded
time after a short warm-up, alternating between the two servers for a few rounds (the
machine is shared: whatever else runs falls on both alike) and reporting the median
round. Every request is a new entry for a (participant, day) no
request used before, so each one is a real create (201). It prints requests/s, p50/p99
latency, errors, the server's peak memory (sum of RSS of the gunicorn master and workers,
sampled every 50 ms), CPU used by server and load generator, the server's and
PostgreSQL's CPU per request (all `postgres` processes of the machine, read from /proc)
and the WAL written per request (`pg_stat_wal`), the two goal ratios, and a `/ping` run
showing what wrk and gunicorn reach without the application and database.

Needs: PostgreSQL at BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test,
used only to create and drop the benchmark's own database) and `wrk` on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import (  # noqa: E402
    Engine,
    create_engine,
    insert,
    inspect,
    make_url,
    select,
    text,
)

from api.config import normalise_database_url  # noqa: E402

DIARY_PATH = "/api/v1/me/diary-entries"
ROWS_FLOOR_PATH = "/floor/diary-rows"
ZONE = "Asia/Shanghai"
PORTS = (18010, 18011, 18012)  # service, floor, service without the hash chain
CONNECTIONS = (10, 50)
WARMUP_SECONDS = 3
FLOOR_RPS_HINT = 1300  # the expected floor at 10 connections on this 2-core machine
CLK_TCK = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = r"""
-- One new diary entry per request: each wrk thread walks its own slice of the
-- (token, day) slots, so no two requests share a participant's day.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local path, first = args[1], tonumber(args[2])
  local count, nthreads = tonumber(args[3]), tonumber(args[4])
  recorded_at = args[5]
  local per = math.floor(count / nthreads)
  local lo, hi = first + tid * per, first + (tid + 1) * per - 1
  slots = {}
  local i = 0
  for line in io.lines(path) do
    if i > hi then break end
    if i >= lo then slots[#slots + 1] = line end
    i = i + 1
  end
  pos = 0
  math.randomseed(os.time() * 1000 + tid * 7919)
end

local function uuid4()
  return (string.gsub("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", "[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

function request()
  pos = pos + 1
  local token, day = string.match(slots[((pos - 1) % #slots) + 1], "(%S+) (%S+)")
  local body = '{"client_entry_id":"' .. uuid4() .. '","diary_date":"' .. day ..
    '","abdominal_distension":1,"decreased_appetite":0,"debilitation":2,"leg_edema":0,' ..
    '"discomfort_grade":1,"note":"slept badly","recorded_at":"' .. recorded_at .. '"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token}, body)
end

function done(summary, latency, requests)
  local used, slots_total = 0, 0
  for _, t in ipairs(threads) do
    used = used + t:get("pos")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,' ..
    '"socket_errors":%d,"issued":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, used))
end
"""


@dataclass
class Result:
    label: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_mb: float
    server_cpu: float  # cores used by gunicorn during the run
    wrk_cpu: float  # cores used by wrk during the run
    db_ms: float = 0.0  # CPU of PostgreSQL's processes per request (ms)
    db_backend_ms: float = 0.0  # of it, the client connections' backends
    wal_kb: float = 0.0  # WAL PostgreSQL wrote per request (kB)


# --- database ---------------------------------------------------------------------------


def admin_url() -> str:
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    return normalise_database_url(url)


def wal_written(url: str) -> int:
    """PostgreSQL's WAL bytes so far (`pg_stat_wal`, whole cluster).

    Read around a run, with one server under load at a time, the difference is that
    server's WAL: what its COMMITs wait to flush.
    """
    with _admin_engine(url).connect() as conn:
        return int(conn.execute(text("SELECT wal_bytes FROM pg_stat_wal")).scalar_one())


def database_cpu() -> dict[int, tuple[str, int]]:
    """CPU time of this machine's PostgreSQL processes, by pid: (what it is, ns).

    From `/proc/<pid>/schedstat` (nanoseconds on the CPU), not the 10 ms ticks of
    `/proc/<pid>/stat`: a block of fifty in-process requests is a few ticks' worth.

    What it is: `backend` (a client's connection), `autovacuum`, or `background` (WAL
    writer, checkpointer, ...). The service's pooled connections live across a run, so
    the difference around a run is the database's CPU for that server's requests; an
    autovacuum worker that ends within the run takes its CPU time with it.
    """
    found: dict[int, tuple[str, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() != "postgres":
                    continue
            with open(f"/proc/{entry.name}/cmdline") as f:
                title = f.read()
        except OSError:
            continue
        pid = int(entry.name)
        found[pid] = (_database_process_kind(title), _cpu_ns(pid))
    return found


def _cpu_ns(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _database_process_kind(title: str) -> str:
    if "autovacuum" in title:
        return "autovacuum"
    if "(" in title:  # "postgres: 15/main: user db 127.0.0.1(51234) idle"
        return "backend"
    return "background"


def database_cpu_since(before: dict[int, tuple[str, int]]) -> dict[str, float]:
    """Seconds of PostgreSQL CPU since `before`, by kind of process."""
    seconds: dict[str, float] = {"backend": 0.0, "autovacuum": 0.0, "background": 0.0}
    for pid, (kind, ns) in database_cpu().items():
        earlier = before.get(pid)
        started = earlier[1] if earlier is not None and earlier[0] == kind else 0
        seconds[kind] += (ns - started) / 1e9
    return seconds


def analyze_diary_tables(url: str) -> None:
    """Fresh statistics for the tables the diary writes, as autovacuum keeps them in service.

    The benchmark grows `diary_entries` from empty by thousands of rows a second, faster
    than autovacuum (a pass a minute) re-analyses it. A backend that planned the foreign
    key check of `diary_entry_versions.entry_id` while the table was a page or two keeps
    that plan, a sequential scan, until the table's statistics change: each submit then
    reads the whole table, and whichever server ran first pays for it. ANALYZE after each
    warm-up makes every backend plan again against the table as it is.
    """
    with _admin_engine(url).connect() as conn:
        conn.execute(text("ANALYZE diary_entries, diary_entry_versions, audit_events"))


@functools.cache
def _admin_engine(url: str) -> Engine:
    return create_engine(normalise_database_url(url), isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def bench_database() -> Iterator[str]:
    """A database of our own, dropped at the end whatever happens."""
    admin = create_engine(admin_url(), isolation_level="AUTOCOMMIT")
    name = f"bench_diary_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url()).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def prepare(url: str, secret: str, participants: int, slots_file: Path) -> date:
    """Migrate, add participants at one site, write `token day` slots; returns today."""
    from api import create_app
    from api.auth import PARTICIPANT, issue_access_token
    from api.extensions import db
    from api.models import Participant, Site
    from bench.floor_app import metadata as floor_metadata

    app = create_app(
        {
            "APP_ENV": "production",
            "SQLALCHEMY_DATABASE_URI": url,
            "AUTO_MIGRATE": True,
            "JWT_SECRET": secret,
            "ACCESS_TOKEN_TTL": timedelta(hours=3),
        }
    )
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(ZONE)).date()
    with app.app_context():
        floor_metadata.create_all(db.engine)
        site_id = db.session.scalar(select(Site.id).where(Site.code == "BJ302"))
        rows = [
            {
                "study_code": f"BENCH-{n:06d}",
                "site_id": site_id,
                "arm": "msc",
                "enrolled_on": today - timedelta(days=30),
                "timezone": ZONE,
                "locale": "zh-CN",
                "status": "active",
                "reminder_time": "09:00",
                "diary_reminder_time": "20:00",
                "created_at": now,
                "auth_epoch": 0,
                "version": 1,
            }
            for n in range(participants)
        ]
        db.session.execute(insert(Participant), rows)
        db.session.commit()
        ids = list(db.session.scalars(select(Participant.id).order_by(Participant.id)))
        tokens = [issue_access_token("participant", pid, PARTICIPANT, 0)[0] for pid in ids]
        if inspect(db.engine).has_table("chain_heads"):
            # Enrolment writes each participant's first audit link, so in the service every
            # participant's hash chain already has its head; give the bench's bulk-made
            # participants theirs, or every request would pay for creating one.
            db.session.execute(
                text(
                    "INSERT INTO chain_heads (chain_key, seq, head_hash) "
                    "SELECT 'participant:' || id, 0, :genesis FROM participants"
                ),
                {"genesis": "0" * 64},
            )
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        db.engine.dispose()
    # Slot i: participant i % P, day today - i // P (the backfill window: 3 days).
    with slots_file.open("w") as out:
        for back in range(3):
            day = (today - timedelta(days=back)).isoformat()
            for token in tokens:
                out.write(f"{token} {day}\n")
    return today


def entry_body(day: str, recorded_at: str) -> dict[str, Any]:
    """A diary entry for `day`, as the wrk script sends it (a new `client_entry_id`)."""
    return {
        "client_entry_id": str(uuid.uuid4()),
        "diary_date": day,
        "abdominal_distension": 1,
        "decreased_appetite": 0,
        "debilitation": 2,
        "leg_edema": 0,
        "discomfort_grade": 1,
        "note": "slept badly",
        "recorded_at": recorded_at,
    }


# --- server -----------------------------------------------------------------------------


def server_env(url: str, secret: str) -> dict[str, str]:
    """The environment of a benchmark's gunicorn: production settings, migrations done."""
    return {
        **os.environ,
        "APP_ENV": "production",
        "DATABASE_URL": url,
        "AUTO_MIGRATE": "0",
        "JWT_SECRET": secret,
        "PYTHONPATH": str(ROOT),
    }


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except OSError:
        return 0


class Server:
    """A gunicorn process tree on one port, with its memory sampled in the background."""

    def __init__(self, app: str, port: int, env: dict[str, str], args: argparse.Namespace):
        self.port = port
        self.database_url = env["DATABASE_URL"]
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            "--threads",
            str(args.threads),
            "--backlog",
            "2048",
            "--log-level",
            "warning",
            "--chdir",
            str(ROOT),
        ]
        self.proc = subprocess.Popen(command, env=env, cwd=ROOT, start_new_session=True)
        self.peak_kb = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._wait_until_listening()
        self._sampler.start()

    def pids(self) -> list[int]:
        return [self.proc.pid, *_children(self.proc.pid)]

    def rss_kb(self) -> int:
        return sum(_rss_kb(pid) for pid in self.pids())

    def cpu_ticks(self) -> int:
        return sum(_cpu_ticks(pid) for pid in self.pids())

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_kb = max(self.peak_kb, self.rss_kb())

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                time.sleep(1.0)  # let every worker finish importing
                return
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start listening")

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# --- load -------------------------------------------------------------------------------


def run_wrk(
    url: str, connections: int, seconds: int, script: Path, slot_args: list[str]
) -> tuple[dict, float]:
    """Run wrk; returns its RESULT line and the CPU (cores) it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
        "--",
        *slot_args,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next(row for row in out.splitlines() if row.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :]), cpu / seconds


class Slots:
    """Hands out disjoint ranges of the slots file, one per wrk run.

    Each run gets a small file of its own, so wrk's threads read only their share before
    the clock starts mattering.
    """

    def __init__(self, path: Path, total: int, recorded_at: str) -> None:
        self.path, self.total, self.next, self.recorded_at = path, total, 0, recorded_at
        self.lines: list[str] | None = None
        self.runs = 0

    def take(self, count: int) -> list[str]:
        """The next `count` unused slots; starts over when they run out (the floor has no
        uniqueness to trip over; the diary's own warning says if it ever does)."""
        if self.lines is None:
            self.lines = self.path.read_text().splitlines(keepends=True)
        if self.next + count > self.total:
            self.next = 0
        first, self.next = self.next, self.next + count
        self.runs += 1
        part = self.path.with_name(f"{self.path.stem}-{id(self)}-{self.runs}.txt")
        part.write_text("".join(self.lines[first : first + count]))
        return [str(part), "0", str(count), "2", self.recorded_at]


def run_once(
    label: str,
    server: Server,
    path: str,
    script: Path,
    slots: Slots,
    args: argparse.Namespace,
    connections: int,
) -> Result:
    """A warm-up, then one measured wrk run at `connections`."""
    url = f"http://127.0.0.1:{server.port}{path}"
    run_wrk(url, connections, WARMUP_SECONDS, script, slots.take(args.slots_per_warmup))
    analyze_diary_tables(server.database_url)
    server.peak_kb = server.rss_kb()
    wal = wal_written(server.database_url)
    ticks, db_before = server.cpu_ticks(), database_cpu()
    slot_args = slots.take(args.slots_per_run)
    raw, wrk_cpu = run_wrk(url, connections, args.duration, script, slot_args)
    server_cpu = (server.cpu_ticks() - ticks) / CLK_TCK / args.duration
    db_seconds = database_cpu_since(db_before)
    wal = wal_written(server.database_url) - wal
    if raw["issued"] > int(slot_args[2]) and label != "floor":
        print(f"warning: {label} ran out of fresh slots; later requests were replays")
    seconds = raw["duration_us"] / 1e6
    result = Result(
        label=label,
        connections=connections,
        rps=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=raw["status_errors"] + raw["socket_errors"],
        peak_rss_mb=server.peak_kb / 1024,
        server_cpu=server_cpu,
        wrk_cpu=wrk_cpu,
        db_ms=sum(db_seconds.values()) * 1000 / max(1, raw["requests"]),
        db_backend_ms=db_seconds["backend"] * 1000 / max(1, raw["requests"]),
        wal_kb=wal / 1024 / max(1, raw["requests"]),
    )
    print(
        f"  {label} at {connections} connections: {result.rps:.0f} req/s, "
        f"p99 {result.p99_ms:.1f} ms, database CPU {result.db_ms:.2f} ms/req "
        f"({result.db_backend_ms:.2f} in backends)",
        flush=True,
    )
    return result


def measure(
    label: str,
    server: Server,
    path: str,
    script: Path,
    slots: Slots,
    args: argparse.Namespace,
) -> list[Result]:
    """One run per connection count against one server."""
    return [
        run_once(label, server, path, script, slots, args, connections)
        for connections in CONNECTIONS
    ]


def median_of(runs: list[Result]) -> Result:
    """The median run by figure (rounds differ by what else the machine was doing)."""
    first = runs[0]
    return Result(
        label=first.label,
        connections=first.connections,
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        errors=sum(r.errors for r in runs),
        peak_rss_mb=max(r.peak_rss_mb for r in runs),
        server_cpu=statistics.median(r.server_cpu for r in runs),
        wrk_cpu=statistics.median(r.wrk_cpu for r in runs),
        db_ms=statistics.median(r.db_ms for r in runs),
        db_backend_ms=statistics.median(r.db_backend_ms for r in runs),
        wal_kb=statistics.median(r.wal_kb for r in runs),
    )


def ping_ceiling(server: Server, script: Path, seconds: int) -> Result:
    """`GET /ping` on the floor server: the load generator's and gunicorn's own ceiling."""
    plain = script.with_name("ping.lua")
    plain.write_text(
        'function done(s, l, r) io.write(string.format(\'RESULT {"requests":%d,'
        '"duration_us":%d,"p50_us":%d,"p99_us":%d,"status_errors":%d,"socket_errors":%d,'
        '"issued":0}\\n\', s.requests, s.duration, l:percentile(50), l:percentile(99), '
        "s.errors.status, s.errors.connect + s.errors.read + s.errors.write + "
        "s.errors.timeout)) end\n"
    )
    server.peak_kb = server.rss_kb()
    raw, wrk_cpu = run_wrk(f"http://127.0.0.1:{server.port}/ping", 50, seconds, plain, [])
    seconds_run = raw["duration_us"] / 1e6
    return Result(
        "ping (no app, no db)",
        50,
        raw["requests"] / seconds_run,
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        raw["status_errors"] + raw["socket_errors"],
        server.peak_kb / 1024,
        0.0,
        wrk_cpu,
    )


def app_ms(result: Result) -> float:
    """The server's CPU per request (ms): gunicorn's cores over its requests per second."""
    return result.server_cpu * 1000 / result.rps if result.rps else 0.0


def report(
    results: list[Result], args: argparse.Namespace, load: str, load_after: str = "?"
) -> None:
    print()
    print(
        f"gunicorn: {args.workers} workers, worker class {args.worker_class}, "
        f"{args.threads} thread(s) each; wrk -t2; {args.duration} s per run after a "
        f"{WARMUP_SECONDS} s warm-up; median of {getattr(args, 'rounds', 1)} interleaved "
        f"rounds; load average before: {load}, after: {load_after}"
    )
    header = (
        f"{'endpoint':<26}{'conns':>6}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'peak RSS MB':>13}{'server CPU':>12}{'wrk CPU':>9}"
        f"{'app ms/req':>12}{'db ms/req':>11}{'backends':>10}{'WAL kB/req':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<26}{r.connections:>6}{r.rps:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors:>8}{r.peak_rss_mb:>13.1f}{r.server_cpu:>12.2f}{r.wrk_cpu:>9.2f}"
            f"{app_ms(r):>12.2f}{r.db_ms:>11.2f}{r.db_backend_ms:>10.2f}{r.wal_kb:>12.2f}"
        )
    by = {(r.label, r.connections): r for r in results}
    diary50, floor50 = by[("diary submit", 50)], by[("floor", 50)]
    diary10, floor10 = by[("diary submit", 10)], by[("floor", 10)]
    throughput = diary50.rps / floor50.rps
    latency = diary10.p99_ms / floor10.p99_ms
    diary_cpu, floor_cpu = (app_ms(r) + r.db_ms for r in (diary50, floor50))
    print()
    print(
        f"CPU per request at 50 connections, server + PostgreSQL: diary {diary_cpu:.2f} ms, "
        f"floor {floor_cpu:.2f} ms; while the cores are the limit, throughput follows "
        f"floor/diary = {floor_cpu / diary_cpu:.2f}"
    )
    print(
        f"throughput at 50 connections: diary/floor = {throughput:.2f} "
        f"(goal >= 0.50: {'met' if throughput >= 0.5 else 'NOT met'})"
    )
    print(
        f"p99 at 10 connections: diary/floor = {latency:.2f} "
        f"(goal <= 2.5: {'met' if latency <= 2.5 else 'NOT met'})"
    )
    rows50 = by.get(("floor, diary rows", 50))
    if rows50 is not None:
        print(
            f"the database's share at 50 connections: the bare floor app writing a submit's "
            f"rows reaches {rows50.rps / floor50.rps:.2f} of the floor's throughput (the most "
            f"any application code could), the service {diary50.rps / rows50.rps:.2f} of it"
        )
    for connections in CONNECTIONS:
        off = by.get(("diary, chain off", connections))
        if off is None:
            continue
        on = by[("diary submit", connections)]
        share = 1 - off.p50_ms / on.p50_ms
        print(
            f"hash chain at {connections} connections: {off.rps:.0f} -> {on.rps:.0f} req/s, "
            f"p50 {off.p50_ms:.1f} -> {on.p50_ms:.1f} ms: {share * 100:.0f} % of the wall time "
            f"(goal <= 10 %: {'met' if share <= 0.10 else 'NOT met'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--workers", type=int, default=4)
    # gthread keeps connections alive (as phones behind a proxy do); sync workers close
    # each one, which capped even `/ping` near 1,000 requests/s here.
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--participants", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument(
        "--chain-off", action="store_true", help="also the service without the hash chain"
    )
    parser.add_argument(
        "--diary-rows",
        action="store_true",
        help="also the floor app writing a diary submit's rows (/floor/diary-rows)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    # Fresh (participant, day) slots for every diary request: 60,000 participants x 3
    # days last 3 rounds x 2 runs at up to 1,800 requests/s. `--chain-off` and
    # `--diary-rows` draw on the same slots: raise --participants (a warning says when
    # a run ran out).
    args.slots_per_run = 1800 * args.duration
    args.slots_per_warmup = 1800 * WARMUP_SECONDS
    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    secret = secrets.token_urlsafe(48)
    with bench_database() as url, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        slots_file = work / "slots.txt"
        print(f"preparing {args.participants} participants ...", flush=True)
        prepare(url, secret, args.participants, slots_file)
        script = work / "diary.lua"
        script.write_text(WRK_SCRIPT)
        recorded_at = datetime.now(ZoneInfo(ZONE)).isoformat(timespec="seconds")
        env = server_env(url, secret)
        diary_slots = Slots(slots_file, 3 * args.participants, recorded_at)
        floor_slots = Slots(slots_file, 3 * args.participants, recorded_at)
        servers = [
            ("diary submit", Server("wsgi:app", PORTS[0], env, args), DIARY_PATH, diary_slots),
            ("floor", Server("bench.floor_app:app", PORTS[1], env, args), "/floor", floor_slots),
        ]
        if args.chain_off:
            # The chain's cost through gunicorn: the service without it, in the same rounds.
            off = Server("bench.chain_off_app:app", PORTS[2], env, args)
            servers.append(("diary, chain off", off, DIARY_PATH, diary_slots))
        if args.diary_rows:
            # The database's share: the bare floor app writing the rows a submit must.
            rows_floor = ("floor, diary rows", servers[1][1], ROWS_FLOOR_PATH, diary_slots)
            servers.append(rows_floor)
        runs: dict[tuple[str, int], list[Result]] = {}
        try:
            # Interleaved rounds, both servers up: whatever else the shared machine does
            # falls on both alike, and the median of the rounds is reported.
            for n in range(args.rounds):
                print(f"round {n + 1} of {args.rounds} (load {os.getloadavg()[0]:.2f})")
                for connections in CONNECTIONS:
                    for label, server, path, slots in servers:
                        result = run_once(label, server, path, script, slots, args, connections)
                        runs.setdefault((label, connections), []).append(result)
            ping = ping_ceiling(servers[1][1], script, 5)
        finally:
            for server in {id(server): server for _, server, _, _ in servers}.values():
                server.stop()
    results = [median_of(r) for r in runs.values()]
    order = ("diary submit", "diary, chain off", "floor, diary rows", "floor")
    results.sort(key=lambda r: (order.index(r.label), r.connections))
    report([*results, ping], args, load, "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
