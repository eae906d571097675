"""What PostgreSQL's busy backends are waiting on, sampled while a benchmark runs.

    .venv/bin/python bench/pg_waits.py [--seconds 60] [--every 0.02] [--database 'bench_%']

Run it beside a benchmark (e.g. bench/diary_submit.py, whose database is `bench_diary_*`).
Every `--every` seconds it reads `pg_stat_activity` for the active backends of the
databases matching `--database` (a LIKE pattern) and counts each sample by what the
backend runs (the first words of its statement) and its wait event ("CPU" when it waits on
nothing). The table it prints tells apart a server that computes from one that waits,
on row locks (Lock), on the WAL at commit (IO/WALSync, LWLock/WALWrite), or on its client
(Client/ClientRead).

Connects to BENCH_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time

import psycopg

SAMPLE = """
SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, ''), query
FROM pg_stat_activity
WHERE state = 'active' AND datname LIKE %s AND pid <> pg_backend_pid()
"""


def statement_kind(query: str) -> str:
    """The statement's first words, enough to tell the benchmark's statements apart."""
    words = re.findall(r"[A-Za-z_][A-Za-z_0-9]*", query)[:3]
    return " ".join(words) or "(empty)"


def sample(
    url: str, pattern: str, seconds: float, every: float
) -> collections.Counter[tuple[str, str]]:
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for wait_type, wait_event, query in conn.execute(SAMPLE, (pattern,)):
                wait = f"{wait_type}/{wait_event}" if wait_event else wait_type
                counts[(statement_kind(query), wait)] += 1
            time.sleep(every)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--every", type=float, default=0.02)
    parser.add_argument("--database", default="bench_%", help="LIKE pattern of database names")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    counts = sample(url, args.database, args.seconds, args.every)
    total = sum(counts.values())
    print(f"{total} samples of active backends over {args.seconds:.0f} s")
    print(f"{'share':>7}  {'samples':>7}  {'wait':<22} statement")
    for (kind, wait), n in counts.most_common(25):
        print(f"{n / total * 100:6.1f}%  {n:7d}  {wait:<22} {kind}")
    waits = collections.Counter[str]()
    for (_kind, wait), n in counts.items():
        waits[wait] += n
    print("by wait: " + ", ".join(f"{w} {n / total * 100:.0f} %" for w, n in waits.most_common()))


if __name__ == "__main__":
    main()
