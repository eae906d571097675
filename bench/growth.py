"""Benchmark: does the cost of the everyday requests stay flat as the diary table grows?

    python bench/growth.py [--sizes 0,1000000,10000000] [--submits 300] [--repeat 30]

Makes a PostgreSQL database of its own (`bench_growth_<random>`, dropped at the end) on
the server of `BENCH_DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/postgres)
and migrates it. One site (BJ302, "the measured site") gets a fixed cohort that never
changes; every other size is reached by enrolling more participants at 60 other sites
(enrolled over the three years before the benchmark's fixed clock) and loading their
diary entries with `COPY` in the order a real table fills (day by day, all participants
interleaved), plus their lab visits, a phone each (most of them), a weekly sent reminder
and a few alerts. The bulk rows have no versions, audit rows or chain links: none of the
measured reads touch them (the submits make theirs, through the guarded path).

At each size, in the same run, it times through the API in this process (Flask test
client, real request handling): diary submit (`POST /me/diary-entries`, fresh
participants and days at a third site), a participant's calendar
(`GET /participants/{id}/compliance`), one site's compliance (`GET /compliance?site=`);
the Today page's worklist queries (`api/services/worklist.py`) and one reminder
planner pass (`notifications.planning.plan`, after a pass that catches up). It records
every SQL statement each makes, prints its `EXPLAIN` and flags a Seq Scan on any table of
more than 10,000 rows. Figures are p50/p99 in ms and the ratio to the first size.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compliance import bench_admin, drop_database

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
TODAY = date(2026, 6, 1)
YESTERDAY = TODAY - timedelta(days=1)
FIRST_ENROLMENT = TODAY - timedelta(days=3 * 365)
MEASURED_SITE, SUBMIT_SITE = "BJ302", "LZU1"
OTHER_SITES = 60
MEASURED_COHORT = 40
BIG_TABLE_ROWS = 10_000
PROBE_BLOCK = 5  # operations, then probes, alternating
ENTRY_DAYS_PER_STATEMENT = 31
ENTRY_COLUMNS = (
    "participant_id, diary_date, client_entry_id, abdominal_distension, decreased_appetite,"
    " debilitation, leg_edema, discomfort_grade, note, recorded_at, recorded_offset_minutes,"
    " timezone, received_at, late, source, version, updated_at"
)
PARTICIPANT_COLUMNS = (
    "id, study_code, site_id, arm, enrolled_on, timezone, locale, status, status_reason,"
    " status_changed_at, status_changed_on, reminder_time, diary_reminder_time, created_at,"
    " auth_epoch, version"
)


@dataclass
class Cohort:
    """Participants enrolled in one load, as (id, enrolled_on, last diary day)."""

    rows: list[tuple[int, date, date]] = field(default_factory=list)


# -- data --------------------------------------------------------------------------------


class Loader:
    """Grows the database: participants with COPY, their diary entries with COPY."""

    def __init__(self, dsn: str, seed: int = 12) -> None:
        self.dsn = dsn
        self.rng = random.Random(seed)
        self.entries_elsewhere = 0  # entries outside the measured site (the size axis)
        with psycopg.connect(dsn) as conn:
            self.next_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM participants")
            self.next_id = self.next_id.fetchone()[0]
            self.sites = dict(conn.execute("SELECT code, id FROM sites").fetchall())
            for n in range(1, OTHER_SITES + 1):
                code, zone = f"G{n:03d}", "Asia/Urumqi" if n % 10 == 0 else "Asia/Shanghai"
                row = conn.execute(
                    "INSERT INTO sites (code, name, city, timezone, next_participant_number)"
                    " VALUES (%s, %s, 'Bench', %s, 1) RETURNING id",
                    (code, f"Bench hospital {n}", zone),
                ).fetchone()
                self.sites[code] = row[0]
            self.zones = dict(conn.execute("SELECT id, timezone FROM sites").fetchall())
        self.other_site_ids = [self.sites[f"G{n:03d}"] for n in range(1, OTHER_SITES + 1)]

    def enrol(self, site_ids: list[int], count: int | None, entries: int | None) -> Cohort:
        """Enrol `count` participants (or as many as give `entries` entries) and load them."""
        cohort, people, expected = Cohort(), [], 0
        with psycopg.connect(self.dsn) as conn:  # the submits enrol through the sequence
            top = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM participants").fetchone()
            self.next_id = max(self.next_id, top[0])
        while (count is not None and len(people) < count) or (
            entries is not None and expected < entries
        ):
            pid, self.next_id = self.next_id, self.next_id + 1
            site_id = site_ids[pid % len(site_ids)]
            enrolled = FIRST_ENROLMENT + timedelta(days=self.rng.randrange(3 * 365))
            status, changed = "active", None
            if self.rng.random() < 0.08:
                status = "withdrawn"
                changed = enrolled + timedelta(days=self.rng.randrange((TODAY - enrolled).days))
            last = min(YESTERDAY, changed - timedelta(days=1) if changed else YESTERDAY)
            people.append((pid, site_id, enrolled, status, changed))
            cohort.rows.append((pid, enrolled, last))
            expected += int(max(0, (last - enrolled).days + 1) * 0.9)
        started = time.perf_counter()
        self._copy_participants(people)
        loaded = self._copy_entries(cohort)
        entries_done = time.perf_counter()
        self._extras(cohort)
        print(
            f"  loaded {len(people):,} participants and {loaded:,} entries in"
            f" {entries_done - started:.0f} s, their other rows in"
            f" {time.perf_counter() - entries_done:.0f} s",
            flush=True,
        )
        if site_ids != [self.sites[MEASURED_SITE]]:
            self.entries_elsewhere += loaded
        return cohort

    def _copy_participants(self, people: list[tuple[int, int, date, str, date | None]]) -> None:
        with psycopg.connect(self.dsn) as conn:
            with conn.cursor().copy(f"COPY participants ({PARTICIPANT_COLUMNS}) FROM STDIN") as cp:
                for pid, site_id, enrolled, status, changed in people:
                    changed_at = (
                        datetime.combine(changed, datetime.min.time(), UTC) if changed else None
                    )
                    cp.write_row(
                        (
                            pid,
                            f"B{pid:07d}",
                            site_id,
                            "msc" if pid % 2 else "control",
                            enrolled,
                            self.zones[site_id],
                            "zh-CN" if pid % 5 else "en",
                            status,
                            "withdrew consent" if changed else None,
                            changed_at,
                            changed,
                            "09:00",
                            "20:00",
                            datetime.combine(enrolled, datetime.min.time(), UTC),
                            0,
                            1,
                        )
                    )
            conn.execute("SELECT setval('participants_id_seq', %s)", (self.next_id,))

    def _copy_entries(self, cohort: Cohort) -> int:
        """Generate the cohort's entries in PostgreSQL, a month of days per statement.

        Built in the server (`INSERT … SELECT` over `generate_series` of days joined to the
        cohort) because making ten million text rows in Python for `COPY` took over 26
        minutes on this machine: the per-row Python, not the database, was the cost. Each
        statement orders its rows by (day, participant), so the table still fills as a real
        one does, every participant's days interleaved with everyone else's; a month per
        statement keeps each sort in memory and each transaction short. Nothing the product
        needs is dropped: the indexes, constraints and triggers are all maintained as rows
        arrive, as they would be in production; only the per-row foreign-key checks are
        skipped (`session_replication_role`), the rows being made to satisfy them.
        """
        if not cohort.rows:
            return 0
        lo, hi = cohort.rows[0][0], cohort.rows[-1][0]
        first, count = min(row[1] for row in cohort.rows), 0
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = off")  # a benchmark's own database
            # The rows are made to satisfy their foreign keys; checking each of millions
            # one by one (a trigger per row) would double the load for nothing.
            conn.execute("SET session_replication_role = replica")
            day = first
            while day <= YESTERDAY:
                until = min(YESTERDAY, day + timedelta(days=ENTRY_DAYS_PER_STATEMENT - 1))
                params = {"lo": lo, "hi": hi, "first": day, "last": until, "yesterday": YESTERDAY}
                count += conn.execute(ENTRIES_SQL, params).rowcount
                day = until + timedelta(days=1)
        return count

    def _extras(self, cohort: Cohort) -> None:
        """Lab visits every three months, a phone for most, a weekly sent diary reminder,
        and alerts (most acknowledged), so the worklist and planner read real tables."""
        lo, hi = cohort.rows[0][0], cohort.rows[-1][0]
        with psycopg.connect(self.dsn) as conn:
            for statement in EXTRAS_SQL.split(";")[:-1]:
                conn.execute(statement, {"lo": lo, "hi": hi, "today": TODAY, "now": NOW})


# One cohort's entries for the days first..last: one day in ten missing and one in twenty
# late (decided by a hash of participant and day, so a run is repeatable), none after a
# withdrawal, none before enrolment.
ENTRIES_SQL = f"""
INSERT INTO diary_entries ({ENTRY_COLUMNS})
SELECT p.id, g.day, gen_random_uuid(), p.id %% 3, extract(day FROM g.day)::int %% 4, p.id %% 2,
       0, extract(month FROM g.day)::int %% 3, NULL, g.day + time '12:30' AT TIME ZONE 'UTC',
       480, 'Asia/Shanghai', r.received, r.late, 'participant', 1, r.received
FROM (SELECT d::date AS day
      FROM generate_series(%(first)s::date, %(last)s::date, interval '1 day') AS s(d)) AS g
JOIN participants p ON p.id BETWEEN %(lo)s AND %(hi)s AND p.enrolled_on <= g.day
     AND g.day < least(%(yesterday)s::date + 1, coalesce(p.status_changed_on, 'infinity'))
CROSS JOIN LATERAL (SELECT abs(hashint8(p.id::bigint * 100003 + (g.day - date '2000-01-01')))
                           %% 100 AS h) AS k
CROSS JOIN LATERAL (SELECT k.h >= 95 AS late,
                           CASE WHEN k.h >= 95 THEN g.day + 1 + time '03:00'
                                ELSE g.day + time '12:30' END AT TIME ZONE 'UTC' AS received) AS r
WHERE k.h >= 10
ORDER BY g.day, p.id
"""

EXTRAS_SQL = """
INSERT INTO schedule_events (participant_id, kind, number, month, planned_date, target_date,
    window_start, window_end, status, actual_date, updated_at, version)
SELECT p.id, 'lab_visit', m / 3, m, d, d, d - 7, d + 7,
       CASE WHEN d < %(today)s::date - 7 THEN 'completed' ELSE 'scheduled' END,
       CASE WHEN d < %(today)s::date - 7 THEN d END, %(now)s, 1
FROM participants p,
     LATERAL generate_series(3, 36, 3) AS m,
     LATERAL (SELECT (p.enrolled_on + make_interval(months => m))::date) AS t(d)
WHERE p.id BETWEEN %(lo)s AND %(hi)s;

INSERT INTO devices (participant_id, token, platform, locale, active, created_at, updated_at)
SELECT id, 'bench-token-' || id, CASE WHEN id %% 3 = 0 THEN 'ios' ELSE 'android' END,
       locale, true, created_at, created_at
FROM participants WHERE id BETWEEN %(lo)s AND %(hi)s AND id %% 20 <> 0;

INSERT INTO reminders (participant_id, kind, target, target_date, offset_days, due_at,
    expires_at, status, attempts, sent_at, created_at, updated_at)
SELECT p.id, 'diary', 'diary:' || d::date, d::date, 0, d + time '12:00', d + interval '1 day',
       CASE WHEN p.id %% 50 = 0 THEN 'failed' ELSE 'sent' END, 1, d + time '12:00',
       d, d + time '12:00'
FROM participants p,
     LATERAL generate_series(p.enrolled_on, %(today)s::date - 1, interval '7 days') AS g(d)
WHERE p.id BETWEEN %(lo)s AND %(hi)s;

INSERT INTO alerts (participant_id, site_id, kind, status, dedupe_key, created_at,
    acknowledged_at)
SELECT id, site_id, 'missed_diary', CASE WHEN id %% 10 = 0 THEN 'open' ELSE 'acknowledged' END,
       'missed_diary:bench:' || id, created_at,
       CASE WHEN id %% 10 = 0 THEN NULL ELSE created_at + interval '1 day' END
FROM participants WHERE id BETWEEN %(lo)s AND %(hi)s AND id %% 4 = 0;
"""


def vacuum_analyze(dsn: str) -> dict[str, int]:
    """VACUUM ANALYZE, then the row count of each table (as the planner estimates it)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute(
            "SELECT relname, reltuples::bigint FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND relkind = 'r'"
        ).fetchall()
    return dict(rows)


def database_size(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return size.fetchone()[0]


# -- statements and their plans ----------------------------------------------------------


class Recorder:
    """Keeps each distinct statement the engine runs while `recording` is on."""

    def __init__(self, engine: Any) -> None:
        self.label: str | None = None
        self.statements: dict[str, dict[tuple[str, str], Any]] = {}
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if self.label is None:
            return
        head = statement.lstrip().split(None, 1)[0].upper()
        if head in ("SELECT", "WITH", "UPDATE", "DELETE") or "SELECT" in statement.upper():
            if isinstance(params, (list, tuple)) and params and isinstance(params[0], dict):
                params = params[0]
            key = (statement, head)
            self.statements.setdefault(self.label, {}).setdefault(key, params)

    @contextmanager
    def recording(self, label: str) -> Iterator[None]:
        self.label = label
        try:
            yield
        finally:
            self.label = None


def seq_scans(plan: dict[str, Any], big: set[str]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in big:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += seq_scans(child, big)
    return found


def indexes_used(plan: dict[str, Any]) -> list[str]:
    found = [plan["Index Name"]] if "Index Name" in plan else []
    for child in plan.get("Plans", []):
        found += indexes_used(child)
    return found


def explain_all(dsn: str, recorder: Recorder, sizes: dict[str, int], full: bool) -> list[str]:
    """Print each recorded statement's plan; return the flagged Seq Scans."""
    big = {name for name, rows in sizes.items() if rows > BIG_TABLE_ROWS}
    flagged = []
    with psycopg.connect(dsn) as conn:
        for label, statements in recorder.statements.items():
            for n, ((statement, head), params) in enumerate(statements.items(), start=1):
                if head not in ("SELECT", "WITH", "UPDATE", "DELETE", "INSERT"):
                    continue
                try:
                    plan = conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchone()
                    text = conn.execute("EXPLAIN " + statement, params).fetchall()
                except psycopg.Error as error:
                    conn.rollback()
                    print(f"  [{label} #{n}] cannot EXPLAIN: {error}".splitlines()[0])
                    continue
                root = plan[0][0]["Plan"]
                scans, used = seq_scans(root, big), sorted(set(indexes_used(root)))
                verdict = f"SEQ SCAN on {', '.join(sorted(set(scans)))}" if scans else "ok"
                summary = " ".join(statement.split())[:110]
                print(f"  [{label} #{n}] {verdict}; indexes: {', '.join(used) or '-'}")
                print(f"      {summary}")
                if full or scans:
                    for (line,) in text:
                        print(f"        {line}")
                if scans:
                    flagged.append(f"{label} #{n}: {', '.join(sorted(set(scans)))}")
            conn.rollback()
    recorder.statements.clear()
    return flagged


# -- the measured operations -------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def clock(run: Callable[[], Any]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def interleaved(
    run: Callable[[], Any], probe: Callable[[], Any], times: int, warmup: int = 2
) -> tuple[float, float, float]:
    """p50/p99 of `run` in ms and its p50 over the probe's, timed in alternating blocks.

    The machine is shared, so its load changes between sizes (and within one). The probe is
    a request of the same kind whose cost cannot grow with the data; timed in short blocks
    alternating with the operation, it sees the same load, and the ratio of the two p50s
    compares across sizes even when the load average does not.
    """
    for _ in range(warmup):
        run()
        probe()
    samples: list[float] = []
    probes: list[float] = []
    while len(samples) < times:
        samples += [clock(run) for _ in range(min(PROBE_BLOCK, times - len(samples)))]
        probes += [clock(probe) for _ in range(PROBE_BLOCK)]
    p50, p99 = percentiles(samples)
    return p50, p99, p50 / percentiles(probes)[0]


def submitters(app: Any, count: int) -> list[tuple[int, str]]:
    """Fresh participants at the submit site, each with its chain head as enrolment makes it."""
    from sqlalchemy import insert, select, text

    from api.auth import PARTICIPANT, issue_access_token
    from api.extensions import db
    from api.models import Participant, Site

    with app.app_context():
        site_id = db.session.scalar(select(Site.id).where(Site.code == SUBMIT_SITE))
        tag = uuid.uuid4().hex[:6]
        rows = [
            {
                "study_code": f"S{tag}{n:04d}",
                "site_id": site_id,
                "arm": "msc",
                "enrolled_on": TODAY - timedelta(days=30),
                "timezone": "Asia/Shanghai",
                "locale": "zh-CN",
                "status": "active",
                "reminder_time": "09:00",
                "diary_reminder_time": "20:00",
                "created_at": NOW,
                "auth_epoch": 0,
                "version": 1,
            }
            for n in range(count)
        ]
        ids = list(db.session.scalars(insert(Participant).returning(Participant.id), rows))
        db.session.execute(
            text(
                "INSERT INTO chain_heads (chain_key, seq, head_hash) SELECT 'participant:' || id,"
                " 0, :genesis FROM participants WHERE id = ANY(:ids)"
            ),
            {"genesis": "0" * 64, "ids": ids},
        )
        db.session.commit()
        return [(pid, issue_access_token("participant", pid, PARTICIPANT, 0)[0]) for pid in ids]


def submit_next(app: Any, recorder: Recorder, count: int) -> Callable[[], Any]:
    """One diary submit per call (`count` in all), three days per fresh participant; the
    21st is recorded for its plans (the first twenty are the warm-up)."""
    client = app.test_client()
    people = submitters(app, (count + 2) // 3)
    days = [TODAY - timedelta(days=back) for back in range(3)]
    slots = iter([(token, day) for day in days for _pid, token in people][:count])
    calls = iter(range(count))

    def run() -> None:
        n, (token, day) = next(calls), next(slots)
        body = {
            "client_entry_id": str(uuid.uuid4()),
            "diary_date": day.isoformat(),
            "abdominal_distension": n % 3,
            "decreased_appetite": n % 4,
            "debilitation": 1,
            "leg_edema": 0,
            "discomfort_grade": n % 2,
            "recorded_at": "2026-06-01T12:00:00+08:00",
        }
        headers = {"Authorization": f"Bearer {token}"}
        with recorder.recording("submit") if n == 20 else _nothing():
            response = client.post("/api/v1/me/diary-entries", json=body, headers=headers)
        assert response.status_code == 201, response.get_data(as_text=True)[:300]

    return run


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def api_get(app: Any, token: str, path: str, query: dict[str, str]) -> Callable[[], Any]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def run() -> Any:
        response = client.get(path, query_string=query, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        return response.json

    return run


def in_context(app: Any, function: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with app.app_context():
            return function()

    return run


@dataclass
class Figures:
    entries: int
    total_entries: int
    results: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    flagged: list[str] = field(default_factory=list)
    site_entries: int = 0
    load: str = ""


def load_average() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def measure(app: Any, dsn: str, recorder: Recorder, args: argparse.Namespace, ctx: dict) -> dict:
    """Every operation once under the recorder, then timed against the probe (see
    `interleaved`): p50/p99 in ms and the ratio to the probe."""
    from api.services import worklist
    from notifications import planning

    site_ids = [ctx["site_id"]]
    probe = api_get(app, ctx["token"], "/api/v1/sites", {})  # 61 + the seeded sites, fixed
    calendar = api_get(
        app, ctx["token"], f"/api/v1/participants/{ctx['calendar_pid']}/compliance", {}
    )
    site = api_get(app, ctx["token"], "/api/v1/compliance", {"site": MEASURED_SITE})
    operations: dict[str, Callable[[], Any]] = {
        "calendar": calendar,
        "site_compliance": site,
        "worklist.open_alerts": in_context(app, lambda: worklist.open_alerts(site_ids, NOW)),
        "worklist.serious_events": in_context(
            app, lambda: worklist.unreported_serious_events(site_ids, NOW)
        ),
        "worklist.due_events": in_context(app, lambda: worklist.due_events(site_ids, NOW)),
        "worklist.phones": in_context(app, lambda: worklist.unreachable_phones(site_ids)),
        "worklist (all, incl. compliance)": in_context(
            app, lambda: worklist.worklist(site_ids, NOW)
        ),
    }
    submit = submit_next(app, recorder, args.submits + 20)
    results = {"submit": interleaved(submit, probe, args.submits, warmup=20)}
    for label, run in operations.items():
        with recorder.recording(label):
            run()
        results[label] = interleaved(run, probe, args.repeat)
    catch_up = in_context(app, lambda: planning.plan(NOW))
    first = clock(catch_up)  # plans the reminders of the participants enrolled since the last size
    with recorder.recording("planner"):
        catch_up()
    results["planner pass"] = interleaved(catch_up, probe, max(3, args.repeat // 10), warmup=0)
    results["planner (first pass)"] = (first * 1000, first * 1000, 0.0)
    results["probe (GET /sites)"] = interleaved(probe, probe, args.repeat)
    return results


def report(figures: list[Figures]) -> None:
    base = figures[0]
    print("\nfigures: p50 / p99 ms (p50 over the first size's) [p50 over the probe's, and that")
    print("ratio over the first size's] -- the second pair discounts the machine's load")
    print(f"{'operation':<34}" + "".join(f"{f.entries:>44,}" for f in figures))
    for label in base.results:
        cells = []
        for f in figures:
            p50, p99, probe = f.results[label]
            ratio = p50 / base.results[label][0] if base.results[label][0] else 0
            first = base.results[label][2]
            normal = probe / first if first else 0
            cells.append(f"{p50:8.1f} /{p99:8.1f} ({ratio:4.2f}) [{probe:6.2f}, {normal:4.2f}]")
        print(f"{label:<34}" + "".join(f"{c:>44}" for c in cells))
    print(f"{'entries in the table':<34}" + "".join(f"{f.total_entries:>44,}" for f in figures))
    print(
        f"{'entries at the measured site':<34}" + "".join(f"{f.site_entries:>44,}" for f in figures)
    )
    print(f"{'load average while measured':<34}" + "".join(f"{f.load:>44}" for f in figures))
    print()
    for label in ("submit", "calendar", "site_compliance"):
        raw = max(f.results[label][0] / base.results[label][0] for f in figures)
        probed = max(f.results[label][2] / base.results[label][2] for f in figures)
        verdicts = ["met" if worst <= 1.15 else "NOT met" for worst in (raw, probed)]
        print(
            f"goal {label} p50 within 15 % of the first size: worst {raw:.2f} x raw"
            f" ({verdicts[0]}), {probed:.2f} x against the probe ({verdicts[1]})"
        )
    print(
        f"(the table grew {figures[-1].total_entries / max(1, base.total_entries):.0f} x;"
        " the measured site's rows stayed fixed)"
    )
    flagged = [(f.entries, item) for f in figures for item in f.flagged]
    print(f"Seq Scans on big tables: {len(flagged)}")
    for size, item in flagged:
        print(f"  at {size:,}: {item}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,1000000,10000000")
    parser.add_argument("--submits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_growth_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = make_url(server).set(database=name).render_as_string(hide_password=False)
    print(f"database {name}; sizes {sizes}; load average before: {os.getloadavg()}", flush=True)
    app = None
    try:
        app, figures = run(dsn, sizes, args)
        report(figures)
    finally:
        if app is not None and not args.keep:
            from api.extensions import db

            with app.app_context():
                db.engine.dispose()
        if not args.keep:
            drop_database(server, name)
    print(
        f"database {name} {'kept' if args.keep else 'dropped'}; load average after:"
        f" {os.getloadavg()}"
    )


def run(dsn: str, sizes: list[int], args: argparse.Namespace) -> tuple[Any, list[Figures]]:
    from api import create_app
    from api.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://"),
            "AUTO_MIGRATE": True,
            "CLOCK": lambda: NOW,
        }
    )
    logging.getLogger("api.request").setLevel(logging.WARNING)  # a line per request, thousands
    with app.app_context():
        recorder = Recorder(db.engine)
    loader = Loader(dsn)
    measured = loader.enrol([loader.sites[MEASURED_SITE]], MEASURED_COHORT, None)
    # The calendar's participant: the measured site's longest-enrolled active one.
    calendar_pid = min(measured.rows, key=lambda row: (row[2] != YESTERDAY, row[1]))[0]
    _admin, token = bench_admin(app)
    ctx = {"site_id": loader.sites[MEASURED_SITE], "token": token, "calendar_pid": calendar_pid}
    figures = []
    for size in sizes:
        print(f"\n-- growing to {size:,}; load average {load_average()}", flush=True)
        started = time.perf_counter()
        if size > loader.entries_elsewhere:
            loader.enrol(loader.other_site_ids, None, size - loader.entries_elsewhere)
        grown = time.perf_counter() - started
        started = time.perf_counter()
        tables = vacuum_analyze(dsn)
        with psycopg.connect(dsn) as conn:
            total, at_site = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE p.site_id = %s) FROM diary_entries d"
                " JOIN participants p ON p.id = d.participant_id",
                (ctx["site_id"],),
            ).fetchone()
        print(
            f"\n== size {size:,}: {loader.entries_elsewhere:,} entries at other sites,"
            f" {total:,} in all ({at_site:,} at {MEASURED_SITE}), {tables.get('participants')}"
            f" participants; grown in {grown:.0f} s, VACUUM ANALYZE"
            f" {time.perf_counter() - started:.0f} s, database {database_size(dsn)};"
            f" load average {os.getloadavg()}",
            flush=True,
        )
        before = load_average()
        results = measure(app, dsn, recorder, args, ctx)
        load = f"{before} -> {load_average()}"
        print(f"  load average while measured: {load}")
        for label, (p50, p99, probe) in results.items():
            print(f"  {label:<34} p50 {p50:9.1f} ms  p99 {p99:9.1f} ms  {probe:6.2f} x probe")
        print("  EXPLAIN of each statement:")
        flagged = explain_all(dsn, recorder, tables, full=True)
        figures.append(Figures(size, total, results, flagged, at_site, load))
    return app, figures


if __name__ == "__main__":
    main()
