"""The protocol's symptom outcome report, by arm and study month."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.access import site_ids_in_scope
from api.auth import SECURITY_SCHEME, Blueprint, current_principal, require_roles
from api.clock import utcnow
from api.schemas.exports import SymptomReportQuerySchema, SymptomReportSchema
from api.services import outcome_report as service
from api.view_roles import admit

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")

DEFAULT_ROLES = ("monitor", "admin")
CSV_RESPONSE = {
    "description": "CSV, one row per arm and study month: " + ", ".join(service.CSV_COLUMNS),
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


def outcome_roles(func: Callable[..., Any]) -> Callable[..., Any]:
    """Allow the roles of `OUTCOME_REPORT_ROLES` (default monitor and admin): comparing
    arms is the sponsor's view, so coordinators are refused unless configured in."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_roles(current_app.config.get("OUTCOME_REPORT_ROLES") or DEFAULT_ROLES)
        return func(*args, **kwargs)

    documented = blp.doc(security=[{SECURITY_SCHEME: []}])(admit(wrapper, DEFAULT_ROLES))
    documented = blp.alt_response(401, response="UNAUTHORIZED")(documented)
    return blp.alt_response(403, response="FORBIDDEN")(documented)


def _report(query: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    site_ids = site_ids_in_scope(current_principal(), query.get("site"))
    rows = service.symptom_report(site_ids, query.get("arm"))
    return rows, {"site": query.get("site"), "arm": query.get("arm"), "generated_at": utcnow()}


@blp.route("/symptoms")
class SymptomReport(MethodView):
    @outcome_roles
    @blp.arguments(SymptomReportQuerySchema, location="query")
    @blp.response(200, SymptomReportSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """Report the four symptoms and the discomfort grade by arm and study month."""
        rows, about = _report(query)
        return {**about, "rows": rows}


@blp.route("/symptoms.csv")
class SymptomReportCsv(MethodView):
    @outcome_roles
    @blp.arguments(SymptomReportQuerySchema, location="query")
    @blp.doc(responses={"200": CSV_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> Response:
        """Download the symptom outcome report as CSV (one row per arm and month)."""
        rows, _ = _report(query)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(service.CSV_COLUMNS)
        writer.writerows(service.csv_rows(rows))
        response = Response(buffer.getvalue(), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="symptoms.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response
