"""The reminder worker's metrics, served on its own `--metrics-port`.

The figure to alert on is `diary_reminder_oldest_due_seconds`: how long the oldest
reminder that is due and still useful has waited unsent (reminders running late); the
time of the last completed pass says whether the worker is alive at all. The same access
rule as the API's `/metrics` applies: `METRICS_TOKEN` or an address in `METRICS_ALLOW`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, or_, select

from api.clock import utcnow
from api.extensions import db
from api.metrics import may_scrape
from api.models import Reminder
from notifications.sender import Outcome

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
REMINDERS = Counter(
    "diary_reminders_total",
    "Reminders recorded by the worker, by outcome (sent, retrying, failed, undeliverable, …).",
    ["outcome"],
    registry=REGISTRY,
)
FCM_ERRORS = Counter(
    "diary_fcm_errors_total",
    "Messages FCM refused or could not take, by FCM error code.",
    ["code"],
    registry=REGISTRY,
)
PASS_DURATION = Histogram(
    "diary_worker_pass_duration_seconds",
    "Time of one worker pass: plan, dispatch, missed-diary check.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
    registry=REGISTRY,
)
LAST_PASS = Gauge(
    "diary_worker_last_pass_completed_timestamp_seconds",
    "Unix time at which the worker last completed a pass (liveness).",
    registry=REGISTRY,
)


def observe_outcomes(counts: Tally[str], outcomes: Iterable[Outcome]) -> None:
    """Count one recorded batch: each reminder's outcome and each FCM error code."""
    for name, n in counts.items():
        REMINDERS.labels(outcome=name).inc(n)
    for outcome in outcomes:
        if not outcome.ok:
            FCM_ERRORS.labels(code=outcome.error_code or "unknown").inc()


def observe_pass(seconds: float) -> None:
    """A completed pass: its duration, and now (wall time) as the worker's last sign of life."""
    PASS_DURATION.observe(seconds)
    LAST_PASS.set_to_current_time()


def oldest_due_seconds(now: datetime) -> float:
    """Seconds the oldest due, unexpired, unsent reminder has waited (0 when none)."""
    oldest = db.session.scalar(
        select(func.min(Reminder.due_at)).where(
            Reminder.status.in_(("planned", "sending")),
            Reminder.due_at <= now,
            or_(Reminder.expires_at.is_(None), Reminder.expires_at > now),
        )
    )
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


class OldestDueCollector(Collector):
    """Reads the oldest due reminder's age from the database at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.app.app_context():
            try:
                age = oldest_due_seconds(utcnow())
            finally:
                db.session.remove()
        yield GaugeMetricFamily(
            "diary_reminder_oldest_due_seconds",
            "Age of the oldest reminder that is due, still useful and not yet sent.",
            value=age,
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def metrics_wsgi_app(app: Flask) -> Any:
    """A tiny WSGI app: the worker's registry, behind the API's access rule."""
    registry = CollectorRegistry()
    registry.register(_Registry(REGISTRY))
    registry.register(OldestDueCollector(app))

    def serve(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        allowed = may_scrape(
            environ.get("HTTP_AUTHORIZATION", ""),
            environ.get("REMOTE_ADDR"),
            app.config.get("METRICS_TOKEN"),
            app.config["METRICS_ALLOW"],
        )
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        if not allowed:
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"metrics are not served to this client\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [generate_latest(registry)]

    return serve


class _Registry(Collector):
    """Expose another registry's metrics inside the scrape registry."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterator[Any]:
        return iter(self.inner.collect())


def serve_metrics(app: Flask, host: str, port: int) -> WSGIServer:
    """Serve the worker's metrics from a daemon thread; returns the server (to stop it)."""
    server = make_server(host, port, metrics_wsgi_app(app), handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    log.info("worker metrics on http://%s:%d/metrics", host, server.server_port)
    return server
