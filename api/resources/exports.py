"""Exports for statisticians and sponsors: CSV, CDISC ODM and SDTM, FHIR bulk NDJSON.

Every export is staff-only and site-scoped (another site's code answers 404), and is
streamed: the view checks access, closes the request's session and hands a generator
that reads with its own connections to the WSGI server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app
from flask.views import MethodView

from api.access import site_ids_in_scope
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.clock import utcnow
from api.errors import NotFound
from api.extensions import db
from api.schemas.compliance import ComplianceQuerySchema
from api.schemas.exports import SdtmQuerySchema
from api.services import exports as service
from api.services import fhir, odm, sdtm

blp = Blueprint("exports", __name__, url_prefix="/api/v1/exports", description="Exports")

CSV_RESPONSE = {
    "description": "CSV, one row per diary entry (current version): " + ", ".join(service.COLUMNS),
    "content": {"text/csv": {"schema": {"type": "string"}}},
}
ODM_RESPONSE = {
    "description": "CDISC ODM 1.3.2 transactional file: metadata, sites and users, every "
    "version of every diary entry with its AuditRecord, and the schedule's events",
    "content": {"application/xml": {"schema": {"type": "string"}}},
}
SDTM_RESPONSE = {
    "description": "Zip of SDTM datasets DM, QS, SUPPQS, AE, SV as SAS transport v5 (.xpt) "
    "and CSV, with define.xml (Define-XML 2.1)",
    "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
}
NDJSON_RESPONSE = {
    "description": "FHIR R4 bulk data: one resource per line ("
    + ", ".join(fhir.RESOURCE_TYPES)
    + ")",
    "content": {"application/fhir+ndjson": {"schema": {"type": "string"}}},
}


def _download(body: Iterator[str] | Iterator[bytes], mimetype: str, filename: str) -> Response:
    # The request's session has done its reading; the stream uses its own connections.
    db.session.close()
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/diary-entries.csv")
class DiaryEntriesCsv(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.doc(responses={"200": CSV_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> Response:
        """Stream the diary entries of the caller's sites as CSV (site and days optional)."""
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        stmt = service.export_query(site_ids, query.get("from_"), query.get("to"))
        return _download(service.stream_csv(stmt, db.engine), "text/csv", "diary-entries.csv")


@blp.route("/odm.xml")
class OdmExport(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.doc(responses={"200": ODM_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> Response:
        """Stream the diary and its audit trail as a CDISC ODM 1.3.2 transactional file."""
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        body = odm.stream_odm(
            db.engine,
            current_app.extensions["study"],
            site_ids,
            query.get("from_"),
            query.get("to"),
            utcnow(),
        )
        return _download(body, "application/xml", "odm.xml")


@blp.route("/sdtm.zip")
class SdtmExport(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(SdtmQuerySchema, location="query")
    @blp.doc(responses={"200": SDTM_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any]) -> Response:
        """Stream SDTM DM, QS, SUPPQS, AE and SV (XPT and CSV) with define.xml as a zip."""
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        body = sdtm.stream_zip(db.engine, current_app.extensions["study"], site_ids, utcnow())
        return _download(body, "application/zip", "sdtm.zip")


@blp.route("/fhir/<string:resource_type>.ndjson")
class FhirExport(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(ComplianceQuerySchema, location="query")
    @blp.doc(responses={"200": NDJSON_RESPONSE})
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, query: dict[str, Any], resource_type: str) -> Response:
        """Stream one FHIR R4 resource type as bulk-data NDJSON (site and days optional)."""
        if resource_type not in fhir.RESOURCE_TYPES:
            raise NotFound(
                f"No export of {resource_type!r}; one of {', '.join(fhir.RESOURCE_TYPES)}.",
                error="unknown_resource_type",
            )
        site_ids = site_ids_in_scope(current_principal(), query.get("site"))
        body = fhir.stream_ndjson(
            resource_type, db.engine, site_ids, query.get("from_"), query.get("to")
        )
        return _download(body, "application/fhir+ndjson", f"{resource_type}.ndjson")
