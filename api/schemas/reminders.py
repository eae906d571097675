"""Reminders: what the phone was sent, and the coordinators' view with every delivery."""

from marshmallow import fields, validate

from api.models.reminders import REMINDER_STATUSES
from api.schemas.base import BaseSchema, DateRangeQuerySchema


class NotificationSchema(BaseSchema):
    """A reminder as the phone sees it once it was sent."""

    id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True)
    target_date = fields.Date(dump_only=True)
    due_at = fields.AwareDateTime(dump_only=True)
    sent_at = fields.AwareDateTime(dump_only=True)
    opened_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    title = fields.String(dump_only=True)
    body = fields.String(dump_only=True)


class DeliverySchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    device_id = fields.Integer(dump_only=True)
    attempt = fields.Integer(dump_only=True)
    at = fields.AwareDateTime(dump_only=True)
    message_id = fields.String(dump_only=True, allow_none=True)
    error_code = fields.String(dump_only=True, allow_none=True)
    error = fields.String(dump_only=True, allow_none=True)


class ReminderSchema(BaseSchema):
    """A reminder with every message sent for it (coordinators' view)."""

    id = fields.Integer(dump_only=True)
    kind = fields.String(dump_only=True)
    target = fields.String(dump_only=True)
    target_date = fields.Date(dump_only=True)
    schedule_event_id = fields.Integer(dump_only=True, allow_none=True)
    offset_days = fields.Integer(dump_only=True)
    due_at = fields.AwareDateTime(dump_only=True)
    expires_at = fields.AwareDateTime(dump_only=True)
    status = fields.String(dump_only=True)
    attempts = fields.Integer(dump_only=True)
    last_error = fields.String(dump_only=True, allow_none=True)
    next_attempt_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    sent_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    opened_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), dump_only=True)


class ReminderQuerySchema(DateRangeQuerySchema):
    """`from`/`to`: local days of the participant on which the reminders are due."""

    status = fields.String(validate=validate.OneOf(REMINDER_STATUSES))
