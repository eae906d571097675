"""Benchmark: what the audit hash chain costs diary submissions (chain off vs on).

    .venv/bin/python bench/audit_chain.py [--blocks 12] [--per-block 100]
    .venv/bin/python bench/audit_chain.py --wrk [--duration 10] [--rounds 2] [--workers 4]

Both modes use the diary benchmark's set-up (bench/diary_submit.py: a PostgreSQL database
of their own, dropped at the end; participants with tokens; every request a new entry
for a (participant, day) no request used before). Every participant starts with a chain
head, as after enrolment, so the figures are the steady state: one locking read of the
head and one head update per submission.

- default, in one process: two apps on the same database, the baseline with
  `AUDIT_CHAIN=False` and the service as shipped, take turns in blocks of
  `--per-block` submissions (Flask test client, one at a time). The block medians make
  drift on a shared machine hit both alike. Prints ms per submission and the change.
- `--wrk`: two gunicorn servers (`bench.chain_off_app:app`, `wsgi:app`) measured in
  alternation with wrk at 10 and 50 connections, as bench/diary_submit.py does. Needs an
  otherwise idle machine to mean much; `bench/diary_submit.py --chain-off` measures the
  same in interleaved rounds, against the floor too.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, text  # noqa: E402

from bench import diary_submit as bench  # noqa: E402

PORTS = {"baseline": 18300, "chained": 18301}
APPS = {"baseline": "bench.chain_off_app:app", "chained": "wsgi:app"}
MODES = ("baseline", "chained")


def start_every_chain(url: str) -> int:
    """A head per participant, as enrolment leaves it (if the set-up made none); returns
    how many chains there are."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO chain_heads (chain_key, seq, head_hash) "
                "SELECT 'participant:' || id, 0, :genesis FROM participants "
                "ON CONFLICT (chain_key) DO NOTHING"
            ),
            {"genesis": "0" * 64},
        )
        conn.execute(text("ANALYZE chain_heads"))
        count = conn.scalar(text("SELECT count(*) FROM chain_heads"))
    engine.dispose()
    return int(count or 0)


def in_process(url: str, secret: str, slots_file: Path, args: argparse.Namespace) -> None:
    from api import create_app
    from api.extensions import db

    config = {
        "APP_ENV": "production",
        "SQLALCHEMY_DATABASE_URI": url,
        "AUTO_MIGRATE": False,
        "JWT_SECRET": secret,
    }
    apps = {mode: create_app({**config, "AUDIT_CHAIN": mode == "chained"}) for mode in MODES}
    statements = {mode: 0 for mode in MODES}
    for mode, app in apps.items():
        with app.app_context():
            engine = db.engine

        def count(*_args: object, mode: str = mode) -> None:
            statements[mode] += 1

        event.listen(engine, "before_cursor_execute", count)
    slots = iter(slots_file.read_text().splitlines())
    recorded_at = datetime.now(ZoneInfo(bench.ZONE)).isoformat(timespec="seconds")
    per_request: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu_per_request: dict[str, list[float]] = {mode: [] for mode in MODES}
    requests = {mode: 0 for mode in MODES}

    def block(mode: str) -> float:
        client = apps[mode].test_client()
        started, cpu_started = time.perf_counter(), time.thread_time()
        for _ in range(args.per_block):
            token, day = next(slots).split()
            response = client.post(
                bench.DIARY_PATH,
                json=bench.entry_body(day, recorded_at),
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code != 201:
                raise SystemExit(f"{mode}: {response.status_code} {response.get_json()}")
        requests[mode] += args.per_block
        cpu_per_request[mode].append((time.thread_time() - cpu_started) * 1000 / args.per_block)
        return (time.perf_counter() - started) * 1000 / args.per_block

    for mode in MODES:  # warm-up: connections, caches
        block(mode)
    statements.update(baseline=0, chained=0)
    requests.update(baseline=0, chained=0)
    cpu_per_request.update(baseline=[], chained=[])
    for n in range(args.blocks):
        bench.analyze_diary_tables(url)  # plans for the tables as they now are
        order = MODES if n % 2 == 0 else MODES[::-1]
        for mode in order:
            per_request[mode].append(block(mode))
    for app in apps.values():
        with app.app_context():
            db.engine.dispose()

    print()
    print(f"{args.blocks} blocks of {args.per_block} submissions per mode, alternating")
    for mode in MODES:
        times = per_request[mode]
        print(
            f"{mode:<9} median {statistics.median(times):6.2f} ms/submission "
            f"(blocks {min(times):.2f} .. {max(times):.2f}), application CPU "
            f"{statistics.median(cpu_per_request[mode]):.2f} ms, "
            f"{statements[mode] / requests[mode]:.1f} SQL statements/submission"
        )
    cpu_base, cpu_chained = (statistics.median(cpu_per_request[m]) for m in MODES)
    print(
        f"application CPU: chain adds {cpu_chained - cpu_base:+.2f} ms "
        f"({(cpu_chained / cpu_base - 1) * 100:+.1f} %) per submission (the steadier figure "
        "on a busy machine; the database's share is in the wall time only)"
    )
    base, chained = (statistics.median(per_request[m]) for m in MODES)
    change = (chained / base - 1) * 100
    print(
        f"chain adds {chained - base:+.2f} ms ({change:+.1f} %) per submission; throughput "
        f"{1000 / base:.0f} -> {1000 / chained:.0f} per second on one connection "
        f"(goal: drop <= 10 %: {'met' if 1000 / chained >= 0.9 * 1000 / base else 'NOT met'})"
    )


def with_wrk(url: str, secret: str, slots_file: Path, args: argparse.Namespace) -> None:
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install -y wrk")
    # gthread, as bench/diary_submit.py runs it: sync workers close every connection,
    # and at 10 connections their runs here came back empty.
    args.worker_class, args.threads = "gthread", 2
    args.slots_per_run = 400 * args.duration
    args.slots_per_warmup = 400 * bench.WARMUP_SECONDS
    script = slots_file.with_name("diary.lua")
    script.write_text(bench.WRK_SCRIPT)
    recorded_at = datetime.now(ZoneInfo(bench.ZONE)).isoformat(timespec="seconds")
    env = bench.server_env(url, secret)
    slots = bench.Slots(slots_file, 3 * args.participants, recorded_at)
    results: dict[str, list[bench.Result]] = {mode: [] for mode in MODES}
    for _ in range(args.rounds):
        for mode in MODES:
            server = bench.Server(APPS[mode], PORTS[mode], env, args)
            try:
                results[mode] += bench.measure(mode, server, bench.DIARY_PATH, script, slots, args)
            finally:
                server.stop()
    print()
    print(f"{'run':<10} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for mode, runs in results.items():
        for r in runs:
            print(
                f"{mode:<10} {r.connections:>5} {r.rps:>8.0f} {r.p50_ms:>8.1f} "
                f"{r.p99_ms:>8.1f} {r.errors:>6}"
            )
    for connections in bench.CONNECTIONS:
        rps = {
            mode: statistics.median(r.rps for r in results[mode] if r.connections == connections)
            for mode in MODES
        }
        print(
            f"{connections} connections: median {rps['baseline']:.0f} -> {rps['chained']:.0f} "
            f"req/s ({(rps['chained'] / rps['baseline'] - 1) * 100:+.1f} %)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wrk", action="store_true", help="through gunicorn and wrk")
    parser.add_argument("--blocks", type=int, default=12, help="in-process blocks per mode")
    parser.add_argument("--per-block", type=int, default=100)
    parser.add_argument("--duration", type=int, default=10, help="wrk: seconds per run")
    parser.add_argument("--rounds", type=int, default=2, help="wrk: runs per mode")
    parser.add_argument("--workers", type=int, default=4, help="wrk: gunicorn workers")
    parser.add_argument("--participants", type=int, default=None)
    args = parser.parse_args()
    if args.participants is None:
        needed = (args.blocks + 1) * 2 * args.per_block
        args.participants = 40000 if args.wrk else max(1000, needed // 3 + 1)
    secret = secrets.token_urlsafe(48)
    with bench.bench_database() as url, tempfile.TemporaryDirectory() as tmp:
        slots_file = Path(tmp) / "slots.txt"
        print(f"preparing {args.participants} participants ...", flush=True)
        bench.prepare(url, secret, args.participants, slots_file)
        print(f"{start_every_chain(url)} chains ready", flush=True)
        (with_wrk if args.wrk else in_process)(url, secret, slots_file, args)


if __name__ == "__main__":
    main()
