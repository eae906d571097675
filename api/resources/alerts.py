"""Alerts: the coordinators' review tasks (symptoms, missed diaries, serious adverse events)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from sqlalchemy import Select

from api.access import site_ids_in_scope
from api.auth import ALL_STAFF, Blueprint, Principal, current_principal
from api.clock import utcnow
from api.errors import NotFound
from api.extensions import db
from api.models import Alert
from api.pagination import SelectPage
from api.schemas.review import AlertAcknowledgeSchema, AlertQuerySchema, AlertSchema
from api.services import alerts as service

blp = Blueprint("alerts", __name__, url_prefix="/api/v1/alerts", description="Alerts")


class AlertRow:
    """An alert with its participant's study code and site code, for one answer."""

    def __init__(self, alert: Alert, study_code: str, site: str) -> None:
        self._alert, self.study_code, self.site = alert, study_code, site

    def __getattr__(self, name: str) -> Any:
        return getattr(self._alert, name)


class AlertPage(SelectPage):
    def fetch(self, stmt: Select[Any]) -> list[Any]:
        return [AlertRow(*row) for row in db.session.execute(stmt)]


def _alert_for(principal: Principal, alert_id: int) -> AlertRow:
    """The alert if the caller may see its site; 404 otherwise."""
    site_ids = None if principal.site_ids is None else list(principal.site_ids)
    row = db.session.execute(service.alerts_query(site_ids).where(Alert.id == alert_id)).first()
    if row is None or not principal.may_see_site(row[0].site_id):
        raise NotFound("No such alert.", error="alert_not_found")
    return AlertRow(*row)


@blp.route("")
class Alerts(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.arguments(AlertQuerySchema, location="query")
    @blp.response(200, AlertSchema(many=True))
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.paginate(AlertPage, page_size=50, max_page_size=500)
    def get(self, query: dict):
        """List alerts at the caller's sites, newest first (filter by status, site, kind)."""
        site_ids = site_ids_in_scope(current_principal(), query.pop("site", None))
        return service.alerts_query(site_ids, **query)


@blp.route("/<int:alert_id>")
class AlertItem(MethodView):
    @blp.auth(*ALL_STAFF)
    @blp.response(200, AlertSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, alert_id: int):
        """Read one alert."""
        return _alert_for(current_principal(), alert_id)


@blp.route("/<int:alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @blp.auth("coordinator")
    @blp.arguments(AlertAcknowledgeSchema)
    @blp.response(200, AlertSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, body: dict, alert_id: int):
        """Acknowledge an alert with a note; a symptom alert also takes the site's decision."""
        principal = current_principal()
        row = _alert_for(principal, alert_id)
        service.acknowledge(
            principal.audit_actor(),
            row._alert,
            note=body["note"],
            decision=body.get("decision"),
            adverse_event_id=body.get("adverse_event_id"),
            now=utcnow(),
        )
        db.session.commit()
        return row
