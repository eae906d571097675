"""Prometheus metrics of the API: `GET /metrics`, outside `/api/v1`.

Under gunicorn every worker process counts into files under `PROMETHEUS_MULTIPROC_DIR`
(see `gunicorn.conf.py`) and a scrape, served by whichever worker, adds them up with the
library's multiprocess collector. Figures that live in the database (open alerts, overdue
serious adverse events) are read at scrape time, once per scrape, not per process.

Access: the bearer `METRICS_TOKEN`, or a client address inside `METRICS_ALLOW` (default
loopback). Anything else is a 403 in the error shape.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable, Iterator
from time import monotonic, perf_counter
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from api.errors import Forbidden
from api.observability import request_started, route_template

REQUESTS = Counter(
    "diary_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "diary_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
DIARY_ENTRIES = Counter(
    "diary_entries_total",
    "Diary entry submissions by outcome (created, replayed, conflict, rejected).",
    ["outcome"],
)
DB_POOL = Gauge(
    "diary_db_pool_connections",
    "Database connections of the API processes, by state (in_use, idle).",
    ["state"],
    multiprocess_mode="livesum",
)

# The submit routes whose answers are counted as diary outcomes (sync counts per entry).
_SUBMIT_ENDPOINTS = {
    "diary_entries.MyEntries",
    "diary_entries.ParticipantEntries",
}

blp = Blueprint("metrics", __name__)

# The labelled children already made, by label values: `labels()` validates and locks on
# every call, a dict lookup does not. Bounded like the labels (route templates x status).
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Any, *values: str) -> Any:
    key = (metric, *values)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*values)
    return child


def record_diary_outcomes(statuses: Iterable[str]) -> None:
    """Count the per-entry results of a sync batch (`created`, `replayed`, …)."""
    for status in statuses:
        _child(DIARY_ENTRIES, status).inc()


def _submit_outcome(status_code: int, error_code: str | None) -> str:
    if status_code == 201:
        return "created"
    if status_code == 200:
        return "replayed"
    if error_code == "entry_exists_for_date":
        return "conflict"
    return "rejected"


def _observe(response: Response) -> Response:
    if request.endpoint == "metrics.metrics":
        return response
    route, method = route_template(), request.method
    _child(REQUESTS, route, method, str(response.status_code)).inc()
    started = request_started()
    if started is not None:
        _child(LATENCY, route, method).observe(perf_counter() - started)
    if method == "POST" and request.endpoint in _SUBMIT_ENDPOINTS:
        outcome = _submit_outcome(response.status_code, g.get("error_code"))
        _child(DIARY_ENTRIES, outcome).inc()
    _sample_pool_now_and_then()
    return response


# How often a process samples its pool: a gauge an operator reads every scrape interval
# needs no fresher figure, and reading the pool after every request cost 1 % of a submit.
POOL_SAMPLE_SECONDS = 1.0
_pool_sampled_at = float("-inf")


def _sample_pool_now_and_then() -> None:
    global _pool_sampled_at
    now = monotonic()
    if now - _pool_sampled_at >= POOL_SAMPLE_SECONDS:
        _pool_sampled_at = now
        sample_pool()


def sample_pool() -> None:
    """Set the pool gauge from this process's connection pool (checked out and idle)."""
    from api.extensions import db

    pool = db.engine.pool
    checked_out = getattr(pool, "checkedout", None)
    idle = getattr(pool, "checkedin", None)
    if callable(checked_out) and callable(idle):
        _child(DB_POOL, "in_use").set(checked_out())
        _child(DB_POOL, "idle").set(idle())


class StudyCollector(Collector):
    """Open alerts by kind and overdue serious adverse events, read at scrape time."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from api.services.adverse_events import overdue_serious_count
        from api.services.alerts import open_alert_counts

        with self.app.app_context():
            from api.clock import utcnow
            from api.extensions import db

            try:
                by_kind = open_alert_counts()
                overdue = overdue_serious_count(utcnow())
            finally:
                db.session.remove()
        alerts = GaugeMetricFamily(
            "diary_open_alerts", "Open alerts awaiting a coordinator, by kind.", labels=["kind"]
        )
        for kind, count in sorted(by_kind.items()):
            alerts.add_metric([kind], count)
        yield alerts
        yield GaugeMetricFamily(
            "diary_serious_adverse_events_overdue",
            "Serious adverse events past their 24-hour reporting deadline, not yet reported.",
            value=overdue,
        )


def scrape_registry(app: Flask) -> CollectorRegistry:
    """The registry a scrape reads: all processes' files under gunicorn, else this one."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for metric in (REQUESTS, LATENCY, DIARY_ENTRIES, DB_POOL):
            registry.register(metric)
    registry.register(StudyCollector(app))
    return registry


def may_scrape(
    authorization: str,
    remote_addr: str | None,
    token: str | None,
    allowed: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    """A scrape is allowed with the right bearer token or from an allowed address."""
    scheme, _, supplied = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip(), token):
        return True
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in allowed)


@blp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, for the token holder or an allowed address only."""
    config = current_app.config
    if not may_scrape(
        request.headers.get("Authorization", ""),
        request.remote_addr,
        config.get("METRICS_TOKEN"),
        config["METRICS_ALLOW"],
    ):
        raise Forbidden("Metrics are not served to this client.", error="metrics_forbidden")
    sample_pool()  # this process's figure as of now, however recent its last request
    registry = current_app.extensions["metrics_registry"]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def install_metrics(app: Flask) -> None:
    disable_created_metrics()  # the `_created` twin of every series is noise here
    app.extensions["metrics_registry"] = scrape_registry(app)
    app.after_request(_observe)
    app.register_blueprint(blp)
