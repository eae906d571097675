"""Exports for statisticians."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from api.access import site_ids_in_scope
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.extensions import db
from api.schemas.compliance import ComplianceQuerySchema
from api.services import exports as service

blp = Blueprint("exports", __name__, url_prefix="/api/v1/exports", description="Exports")

CSV_RESPONSE = {
    "description": "CSV, one row per diary entry (current version): " + ", ".join(service.COLUMNS),
    "content": {"text/csv": {"schema": {"type": "string"}}},
}


@blp.route("/diary-entries.csv")
class DiaryEntriesCsv(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.doc(responses={"200": CSV_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict):
        """Stream the diary entries of the caller's sites as CSV (site and days optional)."""
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        stmt = service.export_query(site_ids, query.get("from_"), query.get("to"))
        # The request's session has done its reading; the stream uses its own connection.
        db.session.close()
        response = Response(service.stream_csv(stmt, db.engine), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="diary-entries.csv"'
        response.headers["Cache-Control"] = "no-store"
        return response
