"""`/metrics` from a real gunicorn with several worker processes, as production runs it.

Workers are recycled every few requests (`GUNICORN_MAX_REQUESTS`), so the requests are
certainly served by many processes, alive and dead; the scrape must still add them up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.test_operations import samples

ROOT = Path(__file__).resolve().parent.parent
REQUESTS_SENT = 30
RECYCLE_AFTER = 10  # requests a worker serves before gunicorn replaces it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(base: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or workers still booting
            time.sleep(0.2)
    pytest.fail(f"gunicorn did not answer: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def gunicorn(
    app, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """gunicorn with gunicorn.conf.py, three workers recycled every few requests."""
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "0",
        "APP_ENV": "test",
        "JWT_SECRET": "gunicorn-test-secret-" + "x" * 32,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "3",
        "GUNICORN_MAX_REQUESTS": str(RECYCLE_AFTER),
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log = tmp_path / "gunicorn.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, proc, log)
        yield base, metrics_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_scrape_adds_up_every_worker_process(gunicorn):
    base, metrics_dir = gunicorn
    before = samples(requests.get(f"{base}/metrics", timeout=60).text, "diary_http_requests_total")
    key = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    for _ in range(REQUESTS_SENT):
        # A new connection each time: a recycled worker must not hold a kept-alive one.
        answer = requests.get(f"{base}/healthz", timeout=60, headers={"Connection": "close"})
        assert answer.status_code == 200
    page = requests.get(f"{base}/metrics", timeout=60).text
    counted = samples(page, "diary_http_requests_total")
    assert counted[key] - before.get(key, 0) == REQUESTS_SENT
    worker_files = {p.name for p in metrics_dir.glob("counter_*.db")}
    assert len(worker_files) >= REQUESTS_SENT // RECYCLE_AFTER  # served by many processes
    assert "diary_open_alerts" in page  # the database figures, once per scrape


def test_gunicorn_answers_carry_the_request_id(gunicorn):
    base, _ = gunicorn
    answer = requests.get(f"{base}/api/v1/me", headers={"X-Request-ID": "probe-1"}, timeout=60)
    assert answer.status_code == 401
    assert answer.headers["X-Request-ID"] == "probe-1"
    assert answer.json()["request_id"] == "probe-1"
