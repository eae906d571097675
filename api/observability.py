"""Request ids, one structured log line per request, and the log format.

Every answer carries `X-Request-ID`: the caller's own when it is a sane token (a proxy or
the phone app may set one to follow a request across systems), else a new one. The id
goes into the error body and into the request's log line, so an operator can find the
line behind any error a coordinator reports. The line names the route template, never
the URL's values, and nothing of the body: no token, code, note text or score.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from time import perf_counter
from typing import Any

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LOG_FORMATS = ("json", "text")

request_log = logging.getLogger("api.request")


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    if not has_request_context():
        return None
    request_id: str | None = g.get("request_id")
    return request_id


# Request ids come from a generator of their own, seeded from the system's randomness
# and seeded again in every forked process (gunicorn's workers), so no two share ids.
_request_ids = random.Random()
os.register_at_fork(after_in_child=_request_ids.seed)


def _new_request_id() -> str:
    """32 hex digits, like a UUID's: a label that finds a log line, not a secret.

    Not `uuid.uuid4()`: its call into the system's randomness cost a tenth of the
    request's own bookkeeping (log line, metrics, id).
    """
    return f"{_request_ids.getrandbits(128):032x}"


def _incoming_request_id() -> str:
    supplied = request.headers.get(REQUEST_ID_HEADER, "")
    return supplied if _SANE_REQUEST_ID.match(supplied) else _new_request_id()


def _start_request() -> None:
    g.request_id = _incoming_request_id()
    g.request_started = perf_counter()


def request_started() -> float | None:
    """When this request's handling began (`perf_counter`), for its duration."""
    started: float | None = g.get("request_started")
    return started


def route_template() -> str:
    """The matched URL rule (`/api/v1/participants/<int:participant_id>`), or `unmatched`.

    Metrics and logs are labelled by template so their cardinality stays bounded whatever
    ids and probes arrive.
    """
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _principal_fields() -> dict[str, Any]:
    principal = g.get("principal")
    if principal is None:
        return {"principal_kind": None, "principal_id": None}
    return {"principal_kind": principal.kind, "principal_id": principal.id}


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or _incoming_request_id()
    response.headers[REQUEST_ID_HEADER] = request_id
    started = request_started()
    duration_ms = round((perf_counter() - started) * 1000, 2) if started else None
    fields = {
        "request_id": request_id,
        "method": request.method,
        "route": route_template(),
        "status": response.status_code,
        "duration_ms": duration_ms,
        **_principal_fields(),
    }
    if g.get("error_code"):
        fields["error"] = g.error_code
    _log_request(fields)
    return response


def _log_request(fields: dict[str, Any]) -> None:
    """`request_log.info("request", extra={"fields": fields})`, without finding the caller.

    The line names no source file or function, so the frame walk `info` does to find
    them is skipped: the record goes straight to the logger's filters and handlers.
    """
    if request_log.isEnabledFor(logging.INFO):
        record = request_log.makeRecord(
            request_log.name,
            logging.INFO,
            __file__,
            0,
            "request",
            (),
            None,
            extra={"fields": fields},
        )
        request_log.handle(record)


def install_request_tracking(app: Flask) -> None:
    app.before_request(_start_request)
    app.after_request(_finish_request)


def _utc_timestamp(created: float) -> str:
    """`2026-01-31T08:00:00.123+00:00`, as `datetime.isoformat` writes it, for less."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if "request_id" not in line:
            request_id = current_request_id()
            if request_id:
                line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Today's development lines, with structured fields appended as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        return text


def configure_logging(log_format: str) -> None:
    """Give the root logger one stream handler in the chosen format (once per process).

    A host that configured logging itself (gunicorn with its own config, pytest's
    capture) keeps its handlers; only their format is not ours to change.
    """
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
