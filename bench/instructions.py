"""Benchmark: instructions per diary submit in the WSGI app, against the floor (callgrind).

    .venv/bin/python bench/instructions.py [--few 40] [--many 120]

CPU time on a shared virtual machine swings by a factor of two from one minute to the
next; an instruction count does not (valgrind's callgrind counts the instructions a
process executes, whatever else the machine does). Uses the diary benchmark's set-up
(bench/diary_submit.py: a PostgreSQL database of its own, dropped at the end), then runs
four processes under `valgrind --tool=callgrind`, two at a time: the service
(`POST /api/v1/me/diary-entries`) and the floor (`bench/floor_app.py`), each once with
`--few` and once with `--many` requests after 20 of warm-up. Every process builds the
environs of all its requests up front, as many whatever it then sends, so start-up,
imports and building requests cancel in the difference of a pair: what is left, divided
by `many - few`, is the WSGI app's own instructions per request. Prints both and their
ratio (the goal of <= 2 ms per submit against the floor's 1 ms is a ratio of 2).

Needs valgrind on PATH (Debian's `valgrind`); takes about three minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import diary_submit as bench  # noqa: E402

WARM_UP = 20
TARGETS = {"service": bench.DIARY_PATH, "floor": "/floor"}


def serve(target: str, slots_file: Path, count: int, built: int) -> None:
    """In the measured process: `WARM_UP + count` requests of `built` made up front."""
    from bench import profile_diary

    app, floor_app, _ = profile_diary.make_apps(
        os.environ["DATABASE_URL"], os.environ["JWT_SECRET"]
    )
    recorded_at = datetime.now(ZoneInfo(bench.ZONE)).isoformat(timespec="seconds")
    slots = slots_file.read_text().splitlines()
    load = profile_diary.Load(
        app if target == "service" else floor_app, TARGETS[target], slots, recorded_at
    )
    environs = load.environs(built)
    load.send(environs[: WARM_UP + count])


def counted(target: str, slots_file: Path, count: int, built: int, env: dict[str, str]) -> int:
    """Instructions callgrind counted in one measured process."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/callgrind.out",
            sys.executable,
            __file__,
            "--serve",
            target,
            str(slots_file),
            str(count),
            str(built),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{target} x {count}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return int(found.group(1))


def measure(url: str, secret: str, few: int, many: int) -> dict[str, float]:
    """Instructions per request of each target, from its pair of processes."""
    from concurrent.futures import ThreadPoolExecutor

    env = {**os.environ, "DATABASE_URL": url, "JWT_SECRET": secret, "PYTHONHASHSEED": "0"}
    built = WARM_UP + many
    with tempfile.TemporaryDirectory() as tmp:
        all_slots = Path(tmp) / "slots.txt"
        bench.prepare(url, secret, 4 * built, all_slots)
        lines = all_slots.read_text().splitlines()
        runs = [(target, count) for target in TARGETS for count in (few, many)]
        files = []
        for n, _run in enumerate(runs):  # each process its own (participant, day) slots
            part = Path(tmp) / f"slots_{n}.txt"
            part.write_text("\n".join(lines[n * built : (n + 1) * built]) + "\n")
            files.append(part)
        jobs = [(target, part, count) for (target, count), part in zip(runs, files, strict=True)]
        with ThreadPoolExecutor(max_workers=2) as pool:  # two cores: two processes at a time
            totals = list(pool.map(lambda job: counted(*job, built, env), jobs))
    by_run = dict(zip(runs, totals, strict=True))
    return {t: (by_run[(t, many)] - by_run[(t, few)]) / (many - few) for t in TARGETS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--few", type=int, default=40)
    parser.add_argument("--many", type=int, default=120)
    parser.add_argument("--serve", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        target, slots_file, count, built = args.serve
        serve(target, Path(slots_file), int(count), int(built))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH (Debian package valgrind)")
    secret = secrets.token_urlsafe(48)
    with bench.bench_database() as url:
        per_request = measure(url, secret, args.few, args.many)
    service, floor = per_request["service"], per_request["floor"]
    print(f"instructions per request in the WSGI app ({args.many - args.few} requests' worth):")
    print(f"  diary submit {service / 1e6:.2f} M   floor {floor / 1e6:.2f} M")
    print(f"  ratio {service / floor:.2f} (the goal, 2 ms against a 1 ms floor, is <= 2.00)")


if __name__ == "__main__":
    main()
