"""Liveness and readiness probes for operators and load balancers."""

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api.errors import error_response
from api.extensions import db
from api.migrations_state import migrations_behind

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> Response:
    """The database answers and has this code's migrations; 503 otherwise."""
    try:
        db.session.execute(text("SELECT 1"))
        behind = migrations_behind(db.session.connection())
    except Exception:  # any failure to reach the database means "not ready"
        db.session.rollback()
        return error_response(
            503,
            headers={"Retry-After": "5"},
            message="The database is unreachable.",
            error="database_unavailable",
        )
    if behind:
        return error_response(
            503,
            headers={"Retry-After": "30"},
            message="The database is behind this release's migrations; run db upgrade.",
            error="migrations_pending",
        )
    return jsonify(status="ready")
