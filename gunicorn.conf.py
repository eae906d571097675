"""Production defaults for `gunicorn wsgi:app` (read from the working directory).

Every value can be overridden by the environment variable named beside it. Workers count
Prometheus metrics into files under PROMETHEUS_MULTIPROC_DIR, emptied at each start, so a
scrape served by any worker reports them all (api/metrics.py).
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request that takes longer than this is killed (exports stream: each chunk resets it).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
# Longer than the proxy's idle timeout toward us is wrong; shorter wastes handshakes.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# The app logs one JSON line per request (api/observability.py): no second access log.
accesslog = None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "0"))

# Set before any worker imports prometheus_client, which reads it at import.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(tempfile.gettempdir(), "symptom-diary-metrics")
)


def on_starting(server):  # type: ignore[no-untyped-def]
    """Start each server with empty metric files: counters restart with the master."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """A dead worker's live gauges (pool use) leave the sum."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
