"""Schedule events: infusions, lab visits, follow-up contacts."""

from marshmallow import fields, validate

from api.models.schedule import EVENT_KINDS, EVENT_STATUSES, ScheduleEvent
from api.schemas.base import REASON, BaseSchema


class ScheduleEventSchema(BaseSchema):
    id = fields.Integer()
    kind = fields.String(metadata={"enum": list(EVENT_KINDS)})
    number = fields.Integer()
    month = fields.Integer(metadata={"description": "Protocol month after enrolment"})
    planned_date = fields.Date(metadata={"description": "As computed at enrolment"})
    target_date = fields.Date()
    window_start = fields.Date()
    window_end = fields.Date()
    out_of_window = fields.Method("_out_of_window")
    status = fields.String(metadata={"enum": list(EVENT_STATUSES)})
    actual_date = fields.Date(allow_none=True)
    reason = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime()
    version = fields.Integer()

    def _out_of_window(self, event: ScheduleEvent) -> bool:
        from api.services.schedule import out_of_window

        return out_of_window(event)


class ScheduleEventUpdateSchema(BaseSchema):
    target_date = fields.Date(metadata={"description": "Reschedule (reason required)"})
    actual_date = fields.Date(metadata={"description": "The day it took place"})
    status = fields.String(validate=validate.OneOf(("completed", "missed")))
    reason = fields.String(validate=REASON)
