"""Alerts, as coordinators read and acknowledge them."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate
from sqlalchemy import Row

from api.models.alerts import ALERT_DECISIONS, ALERT_KINDS, ALERT_STATUSES, Alert
from api.schemas.base import BaseSchema


class AlertSchema(BaseSchema):
    """Dumps the rows of `alerts_query`: an alert, its participant's study code, its site code."""

    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(ALERT_KINDS)})
    urgent = fields.Method("_urgent", metadata={"description": "symptom_urgent or a SAE"})
    participant_id = fields.Integer()
    study_code = fields.String()
    site = fields.String()
    status = fields.String(metadata={"enum": list(ALERT_STATUSES)})
    created_at = fields.AwareDateTime()
    diary_entry_id = fields.Integer(allow_none=True)
    adverse_event_id = fields.Integer(allow_none=True)
    details = fields.Dict(allow_none=True)
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    acknowledged_by_staff_id = fields.Integer(allow_none=True)
    note = fields.String(allow_none=True)
    decision = fields.String(allow_none=True, metadata={"enum": list(ALERT_DECISIONS)})

    def get_attribute(self, obj: Row[Alert, str, str], attr: str, default: Any) -> Any:
        alert, study_code, site = obj
        if attr == "study_code":
            return study_code
        if attr == "site":
            return site
        return super().get_attribute(alert, attr, default)

    def _urgent(self, row: Row[Alert, str, str]) -> bool:
        return row[0].kind in {"symptom_urgent", "serious_adverse_event"}


class AlertQuerySchema(BaseSchema):
    status = fields.String(validate=validate.OneOf(ALERT_STATUSES))
    site = fields.String(validate=validate.Length(min=2, max=10))
    kind = fields.String(validate=validate.OneOf(ALERT_KINDS))
    participant_id = fields.Integer(validate=validate.Range(min=1))


class AlertAcknowledgeSchema(BaseSchema):
    note = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    decision = fields.String(validate=validate.OneOf(ALERT_DECISIONS))
    adverse_event_id = fields.Integer(validate=validate.Range(min=1))
