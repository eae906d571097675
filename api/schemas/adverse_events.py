"""Adverse events, as sites record, amend and read them."""

from __future__ import annotations

from marshmallow import EXCLUDE, fields, validate

from api.clock import utcnow
from api.models.adverse_events import (
    AE_OUTCOMES,
    AE_RELATIONS,
    SERIOUSNESS_CRITERIA,
    AdverseEvent,
)
from api.schemas.base import REASON, BaseSchema

RELATIONS = AE_RELATIONS
OUTCOMES = AE_OUTCOMES


class AdverseEventSchema(BaseSchema):
    id = fields.Integer()
    participant_id = fields.Integer()
    term = fields.String()
    onset_date = fields.Date()
    grade = fields.Integer()
    seriousness = fields.List(fields.String())
    serious = fields.Boolean()
    relation_to_infusion = fields.String()
    outcome = fields.String()
    diary_entry_id = fields.Integer(allow_none=True)
    description = fields.String(allow_none=True)
    awareness_at = fields.AwareDateTime(allow_none=True)
    report_deadline = fields.Method(
        "_deadline", metadata={"description": "awareness_at + 24 h, for serious events"}
    )
    reported_at = fields.AwareDateTime(allow_none=True)
    overdue = fields.Method(
        "_overdue", metadata={"description": "Serious, not reported, and past the deadline"}
    )
    created_at = fields.AwareDateTime()
    created_by_staff_id = fields.Integer()
    updated_at = fields.AwareDateTime()
    version = fields.Integer()

    def _deadline(self, ae: AdverseEvent) -> str | None:
        from api.services.adverse_events import report_deadline

        deadline = report_deadline(ae)
        return deadline.isoformat() if deadline else None

    def _overdue(self, ae: AdverseEvent) -> bool:
        from api.services.adverse_events import is_overdue

        return is_overdue(ae, utcnow())


def _criteria() -> fields.List[str]:
    return fields.List(
        fields.String(validate=validate.OneOf(SERIOUSNESS_CRITERIA)),
        metadata={"description": "Empty: not serious"},
    )


class AdverseEventCreateSchema(BaseSchema):
    term = fields.String(required=True, validate=validate.Length(min=2, max=200))
    onset_date = fields.Date(required=True)
    grade = fields.Integer(required=True, validate=validate.Range(min=0, max=4))
    seriousness = _criteria()
    relation_to_infusion = fields.String(required=True, validate=validate.OneOf(RELATIONS))
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    diary_entry_id = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    description = fields.String(allow_none=True, validate=validate.Length(max=4000))
    awareness_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "Serious events: default now"}
    )
    reported_at = fields.AwareDateTime(allow_none=True)


class AdverseEventUpdateSchema(BaseSchema):
    term = fields.String(validate=validate.Length(min=2, max=200))
    onset_date = fields.Date()
    grade = fields.Integer(validate=validate.Range(min=0, max=4))
    seriousness = _criteria()
    relation_to_infusion = fields.String(validate=validate.OneOf(RELATIONS))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES))
    diary_entry_id = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    description = fields.String(allow_none=True, validate=validate.Length(max=4000))
    awareness_at = fields.AwareDateTime(allow_none=True)
    reported_at = fields.AwareDateTime(allow_none=True)
    reason = fields.String(required=True, validate=REASON)


class IdempotencyKeyHeaderSchema(BaseSchema):
    """The optional `Idempotency-Key` header of a create (every other header passes)."""

    class Meta:
        unknown = EXCLUDE

    idempotency_key = fields.UUID(
        data_key="Idempotency-Key",
        metadata={
            "description": "A UUID made by the client for this record. The same key with "
            "the same body answers the stored record (200); with another body, 409 "
            "`idempotency_key_reused`. Bodies are compared as read (key order, spacing, "
            "the offset of the same instant and an absent versus null field do not "
            "matter). Keys are per participant."
        },
    )
