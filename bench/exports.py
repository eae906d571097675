"""Benchmark: the standard exports and the symptom report beside the CSV export.

    python bench/exports.py [--participants 10000] [--days 365] [--amended-per-mille 10]

The data set is the compliance benchmark's (`bench/compliance.py`: N participants over
the six sites, a year of diary days with one in ten missing and one in twenty late,
3.3 M entries at the defaults), plus what the standard exports read and that benchmark
does not make: version 1 of every entry in `diary_entry_versions` (one INSERT … SELECT;
the chain-linking trigger is off for this bulk load, `session_replication_role =
replica`, so the rows carry no hash chain) and a staff amendment with a reason for
`--amended-per-mille` entries (version 2).

Then, in one process and one run, through the API (Flask test client, every body read
to the end as it streams), for one site and for all sites:

- `GET /exports/diary-entries.csv`           rows = entries
- `GET /exports/odm.xml`                      rows = entry versions (ItemGroupData)
- `GET /exports/sdtm.zip`                     rows = QS records (5 per entry); the time
                                              is the whole zip (DM, QS, SUPPQS, AE, SV,
                                              define.xml), so QS's own rate is higher
- `GET /exports/fhir/QuestionnaireResponse.ndjson`   rows = entries

with rows/s, the share of the CSV's rows/s (goal >= 25 %), and the resident-set growth
during each request (sampled every 5 ms; goal: flat from one site to six). And
`GET /reports/symptoms` (all sites) against a plain SQL floor of the same aggregate run
through psycopg (goal <= 2 x). Each figure is measured once (`--repeat` for more):
the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compliance import (
    NOW,
    bench_admin,
    best_of,
    create_database,
    described,
    drop_database,
    load,
)

FLOOR_REPORT = """
WITH per_month AS (
  SELECT p.id AS pid, p.arm,
         ((extract(year FROM d.diary_date) - extract(year FROM p.enrolled_on)) * 12
          + extract(month FROM d.diary_date) - extract(month FROM p.enrolled_on))::int
         - CASE WHEN extract(day FROM d.diary_date) < LEAST(extract(day FROM p.enrolled_on),
                extract(day FROM date_trunc('month', d.diary_date) + interval '1 month - 1 day'))
           THEN 1 ELSE 0 END AS month,
         avg(d.abdominal_distension::float) AS a, avg(d.decreased_appetite::float) AS b,
         avg(d.debilitation::float) AS c, avg(d.leg_edema::float) AS e,
         avg(d.discomfort_grade::float) AS g,
         count(*) AS days, count(*) FILTER (WHERE d.discomfort_grade >= 3) AS high
  FROM diary_entries d JOIN participants p ON p.id = d.participant_id
  WHERE d.diary_date >= p.enrolled_on
  GROUP BY 1, 2, 3
), base AS (SELECT pid, a, b, c, e, g FROM per_month WHERE month = 0)
SELECT m.arm, m.month, count(*),
       avg(m.a), stddev_samp(m.a), avg(m.a - b0.a), stddev_samp(m.a - b0.a),
       avg(m.b), stddev_samp(m.b), avg(m.b - b0.b), stddev_samp(m.b - b0.b),
       avg(m.c), stddev_samp(m.c), avg(m.c - b0.c), stddev_samp(m.c - b0.c),
       avg(m.e), stddev_samp(m.e), avg(m.e - b0.e), stddev_samp(m.e - b0.e),
       avg(m.g), stddev_samp(m.g), avg(m.g - b0.g), stddev_samp(m.g - b0.g),
       sum(m.high)::float / sum(m.days)
FROM per_month m LEFT JOIN base b0 ON b0.pid = m.pid
WHERE m.month BETWEEN 0 AND 36
GROUP BY m.arm, m.month ORDER BY m.arm, m.month
"""


def add_versions(dsn: str, amended_per_mille: int) -> dict[str, Any]:
    """Version 1 of every entry, and a staff amendment (version 2) of some."""
    started = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        conn.execute("SET session_replication_role = replica")  # bulk load: no chain trigger
        staff_id = conn.execute(
            "INSERT INTO staff_users (email, password_hash, role, is_active, created_at,"
            " auth_epoch) VALUES ('bench-coordinator@example.org', 'x', 'coordinator', true,"
            " %s, 0) RETURNING id",
            (NOW,),
        ).fetchone()[0]
        conn.execute(
            """
            INSERT INTO diary_entry_versions (entry_id, participant_id, version, diary_date,
                abdominal_distension, decreased_appetite, debilitation, leg_edema,
                discomfort_grade, note, recorded_at, recorded_offset_minutes, source,
                actor_type, actor_id, at, reason)
            SELECT id, participant_id, 1, diary_date, abdominal_distension,
                   decreased_appetite, debilitation, leg_edema, discomfort_grade, note,
                   recorded_at, recorded_offset_minutes, source, 'participant',
                   participant_id, received_at, NULL
            FROM diary_entries
            """
        )
        conn.execute(
            """
            WITH chosen AS (
                SELECT id FROM diary_entries WHERE abs(hashint4(id)) %% 1000 < %(n)s
            ), changed AS (
                UPDATE diary_entries d SET version = 2,
                       leg_edema = (d.leg_edema + 1) %% 5, source = 'staff'
                FROM chosen WHERE d.id = chosen.id RETURNING d.*
            )
            INSERT INTO diary_entry_versions (entry_id, participant_id, version, diary_date,
                abdominal_distension, decreased_appetite, debilitation, leg_edema,
                discomfort_grade, note, recorded_at, recorded_offset_minutes, source,
                actor_type, actor_id, at, reason)
            SELECT id, participant_id, 2, diary_date, abdominal_distension,
                   decreased_appetite, debilitation, leg_edema, discomfort_grade, note,
                   recorded_at, recorded_offset_minutes, 'staff', 'staff', %(staff)s,
                   received_at + interval '2 days', 'participant phoned: wrong tap'
            FROM changed
            """,
            {"n": amended_per_mille, "staff": staff_id},
        )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE diary_entry_versions")
        conn.execute("VACUUM ANALYZE diary_entries")
        versions = conn.execute("SELECT count(*) FROM diary_entry_versions").fetchone()[0]
    return {"versions": versions, "versions_s": time.perf_counter() - started}


def api_calls(app: Any, site_code: str) -> dict[str, Callable[[], int]]:
    _admin_id, token = bench_admin(app)
    headers = {"Authorization": f"Bearer {token}"}
    client = app.test_client()

    def download(url: str, query: dict[str, str], count: Callable[[bytes], int]) -> Callable:
        def run() -> int:
            response = client.get(url, query_string=query, headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            rows = 0
            for chunk in response.response:  # streamed: read as it is made, never kept
                rows += count(chunk if isinstance(chunk, bytes) else chunk.encode("utf-8"))
            response.close()
            return rows

        return run

    def lines(chunk: bytes) -> int:
        return chunk.count(b"\n")

    def versions(chunk: bytes) -> int:
        return chunk.count(b'<ItemGroupData ItemGroupOID="IG.DIARY"')

    calls: dict[str, Callable[[], int]] = {}
    for scope, query in (("site", {"site": site_code}), ("all", {})):
        calls[f"csv_{scope}"] = download("/api/v1/exports/diary-entries.csv", query, lines)
        calls[f"odm_{scope}"] = download("/api/v1/exports/odm.xml", query, versions)
        calls[f"sdtm_{scope}"] = download("/api/v1/exports/sdtm.zip", query, len)
        calls[f"fhir_{scope}"] = download(
            "/api/v1/exports/fhir/QuestionnaireResponse.ndjson", query, lines
        )

    def report() -> int:
        response = client.get("/api/v1/reports/symptoms", headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
        return len(response.json["rows"])

    calls["report"] = report
    return calls


def qs_rows(dsn: str, site_id: int | None) -> int:
    where = "WHERE p.site_id = %(site)s" if site_id else ""
    with psycopg.connect(dsn) as conn:
        return (
            5
            * conn.execute(
                "SELECT count(*) FROM diary_entries d JOIN participants p"
                f" ON p.id = d.participant_id {where}",
                {"site": site_id},
            ).fetchone()[0]
        )


def floor_report(dsn: str) -> Callable[[], int]:
    def run() -> int:
        with psycopg.connect(dsn) as conn:
            return len(conn.execute(FLOOR_REPORT).fetchall())

    return run


LABELS = {
    "csv": "GET /exports/diary-entries.csv",
    "odm": "GET /exports/odm.xml",
    "sdtm": "GET /exports/sdtm.zip (QS rows)",
    "fhir": "GET /exports/fhir/QuestionnaireResponse",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--amended-per-mille", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the database (debugging)")
    parser.add_argument("--reuse", metavar="NAME", help="time a kept database; skip the load")
    args = parser.parse_args()

    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = args.reuse or create_database(server)
    dsn = make_url(server).set(database=name).render_as_string(hide_password=False)
    print(f"database {name}; load average before: {os.getloadavg()}", flush=True)
    app = None
    try:
        from api import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://"),
                "AUTO_MIGRATE": True,
                "CLOCK": lambda: NOW,
            }
        )
        if args.reuse:
            loaded = described(dsn)
        else:
            loaded = load(dsn, args.participants, args.days)
            loaded.update(add_versions(dsn, args.amended_per_mille))
        print(
            f"loaded {loaded['entries']:,} entries, {loaded.get('versions', '?')} versions"
            f" ({loaded.get('versions_s', 0):.1f} s), database {loaded['database_size']}",
            flush=True,
        )
        with psycopg.connect(dsn) as conn:
            site_id, site_code = conn.execute(
                "SELECT id, code FROM sites ORDER BY code LIMIT 1"
            ).fetchone()
        calls = api_calls(app, site_code)
        qs = {"site": qs_rows(dsn, site_id), "all": qs_rows(dsn, None)}
        results: dict[str, tuple[float, int, int]] = {}
        for kind in ("csv", "odm", "sdtm", "fhir"):
            for scope in ("site", "all"):
                secs, rows, growth = best_of(args.repeat, calls[f"{kind}_{scope}"])
                if kind == "sdtm":
                    rows = qs[scope]  # the zip's bytes were read; QS records are the rows
                results[f"{kind}_{scope}"] = (secs, rows, growth)
                print(f"  {kind} {scope}: {secs:.2f} s, {rows:,} rows", flush=True)
        floor = floor_report(dsn)
        floor()  # warm the cache for both
        report_api = best_of(args.repeat, calls["report"])
        report_floor = best_of(args.repeat, floor)
        print_report(results, report_api, report_floor)
    finally:
        if app is not None:
            from api.extensions import db

            with app.app_context():
                db.engine.dispose()
        if not args.keep:
            drop_database(server, name)
    print(
        f"database {name} {'kept' if args.keep else 'dropped'}; load average after:"
        f" {os.getloadavg()}"
    )


def print_report(
    results: dict[str, tuple[float, int, int]],
    report_api: tuple[float, int, int],
    report_floor: tuple[float, int, int],
) -> None:
    mb = 1024 * 1024
    print()
    print(
        f"{'export':<42}{'scope':>7}{'s':>9}{'rows':>13}{'rows/s':>11}{'of CSV':>8}{'peak MB':>9}"
    )
    for kind in ("csv", "odm", "sdtm", "fhir"):
        for scope in ("site", "all"):
            secs, rows, growth = results[f"{kind}_{scope}"]
            csv_secs, csv_rows, _ = results[f"csv_{scope}"]
            share = (rows / secs) / (csv_rows / csv_secs)
            print(
                f"{LABELS[kind]:<42}{scope:>7}{secs:>9.2f}{rows:>13,}{rows / secs:>11,.0f}"
                f"{share:>8.0%}{growth / mb:>9.1f}"
            )
    print()
    for kind in ("odm", "sdtm", "fhir"):
        secs, rows, _ = results[f"{kind}_all"]
        csv_secs, csv_rows, _ = results["csv_all"]
        share = (rows / secs) / (csv_rows / csv_secs)
        verdict = "met" if share >= 0.25 else "NOT met"
        print(f"goal {LABELS[kind]} >= 25 % of the CSV's rows/s: {share:.0%} -> {verdict}")
        site_growth, all_growth = results[f"{kind}_site"][2] / mb, results[f"{kind}_all"][2] / mb
        print(f"     memory +{site_growth:.1f} MB (one site) -> +{all_growth:.1f} MB (six sites)")
    ratio = report_api[0] / report_floor[0]
    verdict = "met" if ratio <= 2 else "NOT met"
    print(
        f"goal GET /reports/symptoms within 2 x its SQL floor: api {report_api[0]:.2f} s,"
        f" floor {report_floor[0]:.2f} s, {ratio:.2f} x -> {verdict}"
    )
    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
