"""Benchmark: the compliance report and the CSV export on a trial-sized PostgreSQL data set.

    python bench/compliance.py [--participants 10000] [--days 365] [--repeat 3]

Makes a database of its own (`bench_compliance_<random>`, dropped at the end) on the
server of `BENCH_DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/postgres),
migrates it, and loads N participants over the six sites, each with `days` diary days of
which one in ten is missing and one in twenty late: participants with COPY, entries with
one server-side INSERT … SELECT over generate_series (the fastest bulk insert; nothing
crosses the wire), indexes in place, then VACUUM ANALYZE.

It then times, through the API in this process (Flask test client, real HTTP handling,
JSON/CSV bodies fully read), `GET /compliance?site=…` (one site), `GET /compliance`
(all sites) and `GET /exports/diary-entries.csv`, and in the same run their floors:
a plain `GROUP BY participant` with `count(*) FILTER (…)` over the same tables, and
`COPY (<the export's query>) TO STDOUT (FORMAT csv)`, both through psycopg. Each figure
is the best of `--repeat` runs. Peak memory is the process's resident-set growth during
the request, sampled every 5 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
YESTERDAY = date(2026, 5, 31)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRss:
    """Samples the resident set every 5 ms while a block runs; `.growth` in bytes."""

    def __enter__(self) -> PeakRss:
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.growth = self.peak - self.base


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int, int]:
    """(best seconds, rows, largest RSS growth) over `repeat` runs of `run` → rows."""
    times, growths, rows = [], [], 0
    for _ in range(repeat):
        with PeakRss() as peak:
            started = time.perf_counter()
            rows = run()
            times.append(time.perf_counter() - started)
        growths.append(peak.growth)
    return min(times), rows, max(growths)


# -- data set ---------------------------------------------------------------------------


def create_database(server_url: str) -> str:
    name = f"bench_compliance_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load(dsn: str, participants: int, days: int) -> dict[str, Any]:
    enrolled_on = YESTERDAY - timedelta(days=days - 1)
    timings = {}
    with psycopg.connect(dsn) as conn:
        sites = conn.execute("SELECT id, code FROM sites ORDER BY code").fetchall()
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY participants (id, study_code, site_id, arm, enrolled_on, timezone, locale,"
            " status, reminder_time, diary_reminder_time, created_at, auth_epoch, version)"
            " FROM STDIN"
        ) as copy:
            for pid in range(1, participants + 1):
                site_id, code = sites[pid % len(sites)]
                copy.write_row(
                    (
                        pid,
                        f"{code}-{pid:05d}",
                        site_id,
                        "msc" if pid % 2 else "control",
                        enrolled_on,
                        "Asia/Shanghai",
                        "zh-CN",
                        "active",
                        "09:00",
                        "20:00",
                        NOW,
                        0,
                        1,
                    )
                )
        conn.execute("SELECT setval('participants_id_seq', %s)", (participants,))
        conn.commit()
        timings["participants_copy_s"] = time.perf_counter() - started

        started = time.perf_counter()
        # One day in ten missing, one in twenty late: decided by a hash of (participant,
        # day), so the set is the same on every run.
        conn.execute(
            """
            INSERT INTO diary_entries (
                participant_id, diary_date, client_entry_id, abdominal_distension,
                decreased_appetite, debilitation, leg_edema, discomfort_grade, note,
                recorded_at, recorded_offset_minutes, timezone, received_at, late, source,
                version, updated_at)
            SELECT p.id, d::date, gen_random_uuid(), (p.id + n) %% 3, (p.id * n) %% 4,
                   n %% 3, (p.id + 2 * n) %% 2, (p.id * 7 + n) %% 4 / 3, NULL,
                   d + time '20:30' - interval '8 hours', 480, 'Asia/Shanghai',
                   d + time '20:31' - interval '8 hours' + CASE WHEN h %% 20 = 0
                       THEN interval '14 hours' ELSE interval '0' END,
                   h %% 20 = 0, 'participant', 1, d + time '20:31' - interval '8 hours'
            FROM participants p
            CROSS JOIN LATERAL generate_series(%(first)s::date, %(last)s::date, interval '1 day')
                 WITH ORDINALITY AS g(d, n)
            CROSS JOIN LATERAL (SELECT abs(hashint8(p.id * 100000 + n)::bigint)) AS hh(h)
            WHERE h %% 10 <> 3
            """,
            {"first": enrolled_on, "last": YESTERDAY},
        )
        conn.commit()
        timings["entries_insert_s"] = time.perf_counter() - started
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        entries = conn.execute("SELECT count(*) FROM diary_entries").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        timings["database_size"] = size.fetchone()[0]
    timings["entries"] = entries
    return timings


def described(dsn: str) -> dict[str, Any]:
    """What a reused database holds, in the shape `load` reports."""
    with psycopg.connect(dsn) as conn:
        entries = conn.execute("SELECT count(*) FROM diary_entries").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return {
            "entries": entries,
            "database_size": size.fetchone()[0],
            "participants_copy_s": 0.0,
            "entries_insert_s": 0.0,
            "vacuum_analyze_s": 0.0,
        }


# -- floors -----------------------------------------------------------------------------

FLOOR_REPORT = """
SELECT d.participant_id,
       count(*) FILTER (WHERE NOT d.late) AS on_time,
       count(*) FILTER (WHERE d.late) AS late,
       max(d.diary_date) AS last_entry
FROM diary_entries d JOIN participants p ON p.id = d.participant_id
{where}
GROUP BY d.participant_id
"""


def floor_report(dsn: str, site_id: int | None) -> Callable[[], int]:
    where = "WHERE p.site_id = %(site)s" if site_id else ""

    def run() -> int:
        with psycopg.connect(dsn) as conn:
            return len(conn.execute(FLOOR_REPORT.format(where=where), {"site": site_id}).fetchall())

    return run


def floor_copy(dsn: str, sql: str) -> Callable[[], int]:
    def run() -> int:
        lines = 0
        with (
            psycopg.connect(dsn) as conn,
            conn.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)") as copy,
        ):
            for chunk in copy:
                lines += bytes(chunk).count(b"\n")
        return lines

    return run


# -- the API ----------------------------------------------------------------------------


def bench_admin(app: Any) -> tuple[int, str]:
    """A new admin account for a benchmark's API calls: its id and a bearer token."""
    from api.auth import issue_access_token
    from api.extensions import db
    from api.models import StaffUser

    with app.app_context():
        admin = StaffUser(
            email=f"bench-admin-{uuid.uuid4().hex[:8]}@example.org",
            password_hash="x",
            role="admin",
            is_active=True,
            created_at=NOW,
            auth_epoch=0,
        )
        db.session.add(admin)
        db.session.commit()
        token = issue_access_token("staff", admin.id, "admin", 0)[0]
        return admin.id, token


def api_calls(app: Any, site_code: str) -> dict[str, Callable[[], int]]:
    _admin_id, token = bench_admin(app)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()

    def report(query: dict[str, str]) -> Callable[[], int]:
        def run() -> int:
            response = client.get("/api/v1/compliance", query_string=query, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            return len(response.json["participants"])

        return run

    def export(query: dict[str, str]) -> Callable[[], int]:
        def run() -> int:
            response = client.get(
                "/api/v1/exports/diary-entries.csv", query_string=query, headers=headers
            )
            assert response.status_code == 200
            lines = 0
            for chunk in response.response:  # streamed: read as it is made, never kept
                lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
            response.close()
            return lines - 1  # the header

        return run

    return {
        "report_site": report({"site": site_code}),
        "report_all": report({}),
        "export_site": export({"site": site_code}),
        "export_all": export({}),
    }


def export_sql(app: Any, site_ids: list[int] | None) -> str:
    """The export's own SELECT, compiled with its parameters inlined, for the COPY floor."""
    from sqlalchemy.dialects import postgresql

    from api.services.exports import export_query

    with app.app_context():
        stmt = export_query(site_ids or list(range(1, 7)), None, None)
        return str(
            stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    parser.add_argument("--reuse", metavar="NAME", help="time a kept database; skip the load")
    args = parser.parse_args()

    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = args.reuse or create_database(server)
    dsn = make_url(server).set(database=name).render_as_string(hide_password=False)
    print(f"database {name}; load average before: {os.getloadavg()}", flush=True)
    try:
        from api import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://"),
                "AUTO_MIGRATE": True,
                "CLOCK": lambda: NOW,
            }
        )
        loaded = load(dsn, args.participants, args.days) if not args.reuse else described(dsn)
        print(
            f"loaded {args.participants} participants (COPY {loaded['participants_copy_s']:.2f} s),"
            f" {loaded['entries']:,} entries (INSERT…SELECT {loaded['entries_insert_s']:.1f} s),"
            f" VACUUM ANALYZE {loaded['vacuum_analyze_s']:.1f} s, database"
            f" {loaded['database_size']}",
            flush=True,
        )
        with psycopg.connect(dsn) as conn:
            site_id, site_code = conn.execute(
                "SELECT id, code FROM sites ORDER BY code LIMIT 1"
            ).fetchone()
        calls = api_calls(app, site_code)
        floors = {
            "report_site": floor_report(dsn, site_id),
            "report_all": floor_report(dsn, None),
            "export_site": floor_copy(dsn, export_sql(app, [site_id])),
            "export_all": floor_copy(dsn, export_sql(app, None)),
        }
        plain = best_of(args.repeat, floor_copy(dsn, "SELECT * FROM diary_entries"))
        print(
            f"  plain COPY diary_entries TO STDOUT: {plain[0]:.3f} s,"
            f" {plain[1] / plain[0]:,.0f} rows/s",
            flush=True,
        )
        results = {}
        for key in ("report_site", "report_all", "export_site", "export_all"):
            floors[key]()  # warm the cache for both
            api = best_of(args.repeat, calls[key])
            floor = best_of(args.repeat, floors[key])
            results[key] = (api, floor)
            print(f"  {key}: api {api[0]:.3f} s, floor {floor[0]:.3f} s", flush=True)
        report(results, plain)
    finally:
        if not args.keep:
            from api.extensions import db

            try:
                with app.app_context():  # type: ignore[possibly-undefined]
                    db.engine.dispose()
            except NameError:
                pass
            drop_database(server, name)
    print(
        f"database {name} {'kept' if args.keep else 'dropped'}; load average after:"
        f" {os.getloadavg()}"
    )


def report(results: dict[str, Any], plain: tuple[float, int, int]) -> None:
    mb = 1024 * 1024
    print()
    print(
        f"{'operation':<34}{'API s':>9}{'rows':>11}{'rows/s':>12}{'peak MB':>9}"
        f"{'floor s':>9}{'floor rows/s':>14}{'ratio':>8}"
    )
    labels = {
        "report_site": "GET /compliance?site= (1 site)",
        "report_all": "GET /compliance (6 sites)",
        "export_site": "GET /exports/…csv?site= (1 site)",
        "export_all": "GET /exports/diary-entries.csv",
    }
    for key, ((secs, rows, growth), (fsecs, frows, _)) in results.items():
        print(
            f"{labels[key]:<34}{secs:>9.3f}{rows:>11,}{rows / secs:>12,.0f}{growth / mb:>9.1f}"
            f"{fsecs:>9.3f}{frows / fsecs:>14,.0f}{secs / fsecs:>8.2f}"
        )
    print()
    for key in ("report_site", "report_all"):
        (secs, _, _), (fsecs, _, _) = results[key]
        verdict = "met" if secs <= 3 * fsecs else "NOT met"
        print(f"goal {labels[key]} within 3 x floor: {secs / fsecs:.2f} x -> {verdict}")
    for key in ("export_site", "export_all"):
        (secs, rows, _), (fsecs, frows, _) = results[key]
        share = (rows / secs) / (frows / fsecs)
        verdict = "met" if share >= 0.10 else "NOT met"
        print(f"goal {labels[key]} >= 10 % of COPY's rate: {share:.1%} -> {verdict}")
        plain_share = (rows / secs) / (plain[1] / plain[0])
        print(f"     (and {plain_share:.1%} of a plain COPY of the whole table)")
    site_growth = results["export_site"][0][2] / mb
    all_growth = results["export_all"][0][2] / mb
    rows_ratio = results["export_all"][0][1] / max(1, results["export_site"][0][1])
    print(
        f"export memory: +{site_growth:.1f} MB for {results['export_site'][0][1]:,} rows,"
        f" +{all_growth:.1f} MB for {results['export_all'][0][1]:,} rows"
        f" ({rows_ratio:.1f} x the rows)"
    )
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
