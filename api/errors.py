"""One error shape for every 4xx/5xx: ``{code, status, message, error, errors}``.

Domain code raises `DomainError` (or a subclass) with a stable snake_case ``error`` code;
the handlers here turn it, Flask's HTTP errors and validation failures into that shape.
"""

from __future__ import annotations

import logging
import sqlite3
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, g, jsonify
from marshmallow import Schema, fields
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from api.extensions import db
from api.observability import current_request_id

log = logging.getLogger(__name__)

# Default machine codes for plain HTTP errors that carry none of their own.
DEFAULT_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "too_many_attempts",
    500: "internal_error",
    503: "service_unavailable",
}


class DomainError(Exception):
    """A rule of the product was broken; carries the HTTP status and stable error code."""

    status_code = 400
    error = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        status_code: int | None = None,
        errors: dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        if error:
            self.error = error
        if status_code:
            self.status_code = status_code
        self.errors = errors
        self.extra = extra


class NotFound(DomainError):
    status_code = 404
    error = "not_found"


class Forbidden(DomainError):
    status_code = 403
    error = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    error = "unauthorized"


class Conflict(DomainError):
    status_code = 409
    error = "conflict"


class TooManyAttempts(DomainError):
    """Wait before trying again: answered 429 with a ``Retry-After`` of `retry_after` s."""

    status_code = 429
    error = "too_many_attempts"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class Invalid(DomainError):
    """Input that passed the schema but breaks a rule: 422 naming the field."""

    status_code = 422
    error = "validation_failed"

    def __init__(self, field: str, message: str, *, error: str | None = None, **extra: Any):
        super().__init__(message, error=error, errors={field: [message]}, **extra)


class ErrorSchema(Schema):
    """The error body, documented once for every error response in OpenAPI."""

    code = fields.Integer(required=True, metadata={"description": "HTTP status code"})
    status = fields.String(required=True, metadata={"description": "HTTP status name"})
    message = fields.String(metadata={"description": "Human-readable explanation"})
    error = fields.String(required=True, metadata={"description": "Stable snake_case code"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "Messages by field name"},
    )
    existing_entry_id = fields.Integer(metadata={"description": "With entry_exists_for_date"})
    request_id = fields.String(
        metadata={"description": "The X-Request-ID of this answer, to find its log line"}
    )


def error_body(
    status_code: int,
    *,
    message: str | None = None,
    error: str | None = None,
    errors: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Build the error body; ``errors`` is omitted when there are none.

    Inside a request the body names the request id, and the error code is kept on `g`
    for the request's log line and metrics.
    """
    status = HTTPStatus(status_code)
    body: dict[str, Any] = {
        "code": status_code,
        "status": status.phrase,
        "message": message or status.description,
        "error": error or DEFAULT_ERROR_CODES.get(status_code, "error"),
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
        g.error_code = body["error"]
    return body


def error_response(
    status_code: int, headers: dict[str, str] | None = None, **kwargs: Any
) -> Response:
    response = jsonify(error_body(status_code, **kwargs))
    response.status_code = status_code
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_validation_messages(messages: Any) -> dict[str, Any]:
    """webargs nests messages by location ({"json": {...}}); the contract names fields only."""
    if not isinstance(messages, dict):
        return {"_schema": messages if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, Any] = {}
    for location, by_field in messages.items():
        if location in {"json", "query", "querystring", "form", "headers", "files", "path"} and (
            isinstance(by_field, dict)
        ):
            flat.update(by_field)
        else:
            flat[location] = by_field
    return flat


def handle_http_exception(exc: HTTPException) -> Response:
    """Flask/werkzeug and flask-smorest `abort` errors, in the one shape."""
    code = exc.code or 500
    data = getattr(exc, "data", None) or {}
    kwargs: dict[str, Any] = {"message": data.get("message") or exc.description}
    messages = data.get("errors") or data.get("messages")
    if messages:
        kwargs["errors"] = flatten_validation_messages(messages)
        if "message" not in data:
            kwargs["message"] = "The request has invalid fields."
    if "error" in data:
        kwargs["error"] = data["error"]
    headers = dict(data.get("headers") or {})
    if code == 429:
        kwargs["error"] = "too_many_attempts"
        kwargs["message"] = "Too many attempts; wait before trying again."
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(int(retry_after))
    response = error_response(code, headers=headers, **kwargs)
    if code == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def handle_domain_error(exc: DomainError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
    return error_response(
        exc.status_code,
        headers=headers,
        message=exc.message,
        error=exc.error,
        errors=exc.errors,
        **exc.extra,
    )


# SQLite reports programming errors ("no such column") as OperationalError too; only these
# mean the embedded database is unavailable for now.
_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o")


def _is_connection_lost(exc: DBAPIError) -> bool:
    """The database is unreachable or busy (retry later), not the request or code at fault."""
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return any(marker in str(exc.orig).lower() for marker in _SQLITE_UNAVAILABLE)
    return True


def handle_database_error(exc: DBAPIError) -> Response:
    """A lost database is a 503 the phone retries, never a stack trace."""
    db.session.rollback()
    if _is_connection_lost(exc):
        log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return error_response(
            503,
            headers={"Retry-After": "5"},
            message="The database is unavailable; retry shortly.",
            error="database_unavailable",
        )
    log.exception("database error")
    return error_response(500, message="Internal server error.")


def handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return handle_http_exception(exc)
    log.exception("unhandled error")
    return error_response(500, message="Internal server error.")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
