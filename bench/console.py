"""Benchmark: console pages against the JSON API calls that carry the same data.

    python bench/console.py [--participants 1000] [--days 1095] [--requests 40]

Loads a PostgreSQL database of its own with bench/compliance.py's loader (N participants
over the six sites, each with `days` diary days, one in ten missing, one in twenty late;
dropped at the end), then times in this process (Flask test client: routing, sessions,
rendering or JSON, bodies fully read) in the same run:

- the participants page of one site (`/console/participants?site=…`) against
  `GET /api/v1/participants?site=…` plus `GET /api/v1/compliance?site=…` (the list's
  rates and runs come from the compliance report);
- one participant's page with `days` of diary (`/console/participants/<id>`) against the
  API calls that carry what the page shows: the participant; its compliance calendar
  (every day's status and the rates); every diary entry with its versions, in pages of
  100 (the heat map's tooltips give each day's five scores, and the diary section shows
  the newest 30 with their versions); the schedule (the infusion marks of the chart);
  excused days; adverse events; the alerts of the participant; and the reminders of the
  page's window (14 days back, 3 ahead). Phones have no staff API call: the page's
  device table is left out of the comparison (one small query).

  For reference it also prints the ratio against the narrower set of one call per
  section (the diary as its first 30 entries only), which does not carry the heat map's
  scores.

Each figure is p50 and p99 of `--requests` sequential requests (after two warm-ups); the
goal is each page at most 1.5 x the sum of its API calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from compliance import NOW, bench_admin, create_database, drop_database, load

GOAL = 1.5


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def timed(run: Callable[[], Any], requests: int) -> list[float]:
    for _ in range(2):
        run()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return samples


def clients(app: Any) -> tuple[Any, Any, dict[str, str]]:
    """A console client signed in as an admin, and the admin's API bearer header."""
    admin_id, token = bench_admin(app)
    console = app.test_client()
    with console.session_transaction() as session:
        now = NOW.timestamp()  # the app's clock stands at NOW
        session.update(staff_id=admin_id, epoch=0, started=now, seen=now, locale="en")
    return console, app.test_client(), {"Authorization": f"Bearer {token}"}


def get(client: Any, url: str, headers: dict[str, str] | None = None) -> Callable[[], int]:
    def run() -> int:
        response = client.get(url, headers=headers or {})
        assert response.status_code == 200, (url, response.status_code)
        return len(response.get_data())

    return run


def both(*runs: Callable[[], int]) -> Callable[[], int]:
    return lambda: sum(run() for run in runs)


def participant_calls(
    api: Any, bearer: dict[str, str], pid: int, *, entry_pages: bool = True
) -> list[Callable[[], int]]:
    """The API calls for what the participant page shows (see the module's docstring)."""
    base = f"/api/v1/participants/{pid}"
    today = NOW.astimezone(ZoneInfo("Asia/Shanghai")).date()
    window = f"from={today - timedelta(days=14)}&to={today + timedelta(days=3)}"
    if entry_pages:
        first = api.get(f"{base}/diary-entries?page_size=100", headers=bearer)
        pages = json.loads(first.headers["X-Pagination"])["total_pages"]
        diary = [f"{base}/diary-entries?page_size=100&page={n}" for n in range(1, pages + 1)]
    else:
        diary = [f"{base}/diary-entries?page_size=30"]
    urls = [
        base,
        f"{base}/compliance",
        *diary,
        f"{base}/schedule",
        f"{base}/excused-days",
        f"{base}/adverse-events",
        f"/api/v1/alerts?participant_id={pid}",
        f"{base}/reminders?{window}",
    ]
    return [get(api, url, bearer) for url in urls]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--days", type=int, default=1095)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = create_database(server)
    dsn = make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        from api import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": dsn.replace("postgresql://", "postgresql+psycopg://", 1),
                "AUTO_MIGRATE": True,
                "APP_ENV": "development",
                "JWT_SECRET": "bench-" + "x" * 40,
                "CLOCK": lambda: NOW,
            }
        )
        loaded = load(dsn, args.participants, args.days)
        print(f"loaded {args.participants} participants, {loaded['entries']} entries", flush=True)
        console, api, bearer = clients(app)
        site, pid = "BJ302", 6  # participant 6 is at the first site by the loader's rule
        pages = {
            "participants page, one site": (
                get(console, f"/console/participants?site={site}"),
                both(
                    get(api, f"/api/v1/participants?site={site}", bearer),
                    get(api, f"/api/v1/compliance?site={site}", bearer),
                ),
            ),
            f"participant page, {args.days} diary days": (
                get(console, f"/console/participants/{pid}"),
                both(*participant_calls(api, bearer, pid)),
            ),
            f"participant page, {args.days} diary days, against one call a section": (
                get(console, f"/console/participants/{pid}"),
                both(*participant_calls(api, bearer, pid, entry_pages=False)),
            ),
        }
        for label, (page, calls) in pages.items():
            page_p50, page_p99 = percentiles(timed(page, args.requests))
            api_p50, api_p99 = percentiles(timed(calls, args.requests))
            ratio = page_p50 / api_p50
            verdict = "meets" if ratio <= GOAL else "MISSES"
            print(
                f"{label}: page p50 {page_p50 * 1000:.1f} ms, p99 {page_p99 * 1000:.1f} ms; "
                f"API calls p50 {api_p50 * 1000:.1f} ms, p99 {api_p99 * 1000:.1f} ms; "
                f"page / API {ratio:.2f} at p50 -> {verdict} the {GOAL} x goal",
                flush=True,
            )
    finally:
        drop_database(server, name)


if __name__ == "__main__":
    main()
