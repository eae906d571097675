"""Alerts: the coordinators' review tasks (symptoms, missed diaries, serious adverse events)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Row, Select

from api.access import alert_for, site_ids_in_scope
from api.auth import ALL_STAFF, Blueprint, current_principal
from api.clock import utcnow
from api.extensions import db
from api.models import Alert
from api.pagination import SelectPage
from api.schemas.alerts import AlertAcknowledgeSchema, AlertQuerySchema, AlertSchema
from api.services import alerts as service

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alerts")


class AlertPage(SelectPage):
    """A page of `alerts_query` rows (alert, study code, site code), as AlertSchema dumps them."""

    def fetch(self, stmt: Select[Any]) -> list[Any]:
        return list(db.session.execute(stmt))


@blp.route("")
class Alerts(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(AlertPage, page_size=50, max_page_size=500)
    def get(self, query: dict[str, Any]) -> Select[Alert, str, str]:
        """List alerts at the caller's sites, newest first (filter by status, site, kind)."""
        site_ids = site_ids_in_scope(current_principal(), query.pop("site", None))
        return service.alerts_query(site_ids, **query)


@blp.route("/<int:alert_id>")
class AlertItem(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, AlertSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, alert_id: int) -> Row[Alert, str, str]:
        """Read one alert."""
        return alert_for(current_principal(), alert_id)


@blp.route("/<int:alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @blp.auth("coordinator")
    @blp.arguments(AlertAcknowledgeSchema)
    @blp.response(200, AlertSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict[str, Any], alert_id: int) -> Row[Alert, str, str]:
        """Acknowledge an alert with a note; a symptom alert also takes the site's decision."""
        principal = current_principal()
        row = alert_for(principal, alert_id)
        service.acknowledge(
            principal.audit_actor(),
            row[0],
            note=body["note"],
            decision=body.get("decision"),
            adverse_event_id=body.get("adverse_event_id"),
            now=utcnow(),
        )
        db.session.commit()
        return row
