"""Compliance report, day-by-day calendar and excused days."""

from marshmallow import fields, validate

from api.schemas.base import REASON, BaseSchema, DateRangeQuerySchema

DAY_STATUSES = ("on_time", "late", "missing", "excused", "not_yet_due")


class ComplianceQuerySchema(DateRangeQuerySchema):
    site = fields.String(validate=validate.Length(min=2, max=10))


class ParticipantComplianceSchema(BaseSchema):
    participant_id = fields.Integer()
    study_code = fields.String()
    site = fields.String()
    arm = fields.String()
    status = fields.String()
    enrolled_on = fields.Date()
    expected = fields.Integer(metadata={"description": "Active diary days up to yesterday"})
    on_time = fields.Integer()
    late = fields.Integer()
    missing = fields.Integer()
    excused = fields.Integer(metadata={"description": "Excused days without an entry"})
    rate = fields.Float(allow_none=True, metadata={"description": "on_time / expected"})
    any_rate = fields.Float(
        allow_none=True, metadata={"description": "(on_time + late) / expected"}
    )
    current_missed_run = fields.Integer(
        metadata={"description": "Consecutive missed, non-excused days ending yesterday"}
    )
    last_entry_date = fields.Date(allow_none=True)
    expected_last_14_days = fields.Integer()
    on_time_last_14_days = fields.Integer()
    rate_last_14_days = fields.Float(allow_none=True)
    below_threshold = fields.Boolean()


class SiteComplianceSchema(BaseSchema):
    site = fields.String()
    participants = fields.Integer()
    expected = fields.Integer()
    on_time = fields.Integer()
    late = fields.Integer()
    missing = fields.Integer()
    excused = fields.Integer()
    rate = fields.Float(allow_none=True)
    any_rate = fields.Float(allow_none=True)
    participants_below_threshold = fields.Integer()
    participants_with_missed_run = fields.Integer()


class BelowThresholdSchema(BaseSchema):
    """Who to call: participants under the threshold over the recent window."""

    participant_id = fields.Integer()
    study_code = fields.String()
    site = fields.String()
    rate_last_14_days = fields.Float(allow_none=True)
    expected_last_14_days = fields.Integer()
    on_time_last_14_days = fields.Integer()
    current_missed_run = fields.Integer()
    last_entry_date = fields.Date(allow_none=True)


class ComplianceReportSchema(BaseSchema):
    from_ = fields.Date(data_key="from", allow_none=True)
    to = fields.Date(allow_none=True)
    generated_at = fields.AwareDateTime()
    threshold = fields.Float()
    window_days = fields.Integer()
    sites = fields.List(fields.Nested(SiteComplianceSchema))
    participants = fields.List(fields.Nested(ParticipantComplianceSchema))
    below_threshold = fields.List(fields.Nested(BelowThresholdSchema))


class CalendarDaySchema(BaseSchema):
    date = fields.Date()
    status = fields.String(validate=validate.OneOf(DAY_STATUSES))
    entry_id = fields.Integer(allow_none=True)
    excused_reason = fields.String(allow_none=True)


class CalendarSchema(BaseSchema):
    participant_id = fields.Integer()
    study_code = fields.String()
    from_ = fields.Date(data_key="from")
    to = fields.Date()
    summary = fields.Nested(ParticipantComplianceSchema, allow_none=True)
    days = fields.List(fields.Nested(CalendarDaySchema))


class ExcusedDayCreateSchema(BaseSchema):
    from_ = fields.Date(data_key="from", required=True)
    to = fields.Date(required=True)
    reason = fields.String(required=True, validate=REASON)


class ExcusedDaySchema(BaseSchema):
    id = fields.Integer()
    participant_id = fields.Integer()
    day = fields.Date()
    reason = fields.String()
    created_by_staff_id = fields.Integer()
    created_at = fields.AwareDateTime()
