"""Participants, as staff and as the participant see them."""

from typing import Any

from marshmallow import fields, validate

from api.models.participant import ARMS, PARTICIPANT_STATUSES
from api.schemas.base import (
    REASON,
    BaseSchema,
    locale_field,
    time_of_day_field,
    timezone_field,
)


class ParticipantSchema(BaseSchema):
    id = fields.Integer(dump_only=True)
    study_code = fields.String(dump_only=True)
    site = fields.String(attribute="site.code", dump_only=True)
    arm = fields.String(dump_only=True)
    enrolled_on = fields.Date(dump_only=True)
    timezone = fields.String(dump_only=True)
    locale = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    status_reason = fields.String(dump_only=True, allow_none=True)
    status_changed_at = fields.AwareDateTime(dump_only=True, allow_none=True)
    reminder_time = fields.String(dump_only=True)
    diary_reminder_time = fields.String(dump_only=True)
    created_at = fields.AwareDateTime(dump_only=True)


class EnrolledParticipantSchema(ParticipantSchema):
    """The enrolment and re-issue answers: the only place an activation code is shown."""

    activation_code = fields.String(dump_only=True)
    activation_code_expires_at = fields.AwareDateTime(dump_only=True)

    def get_attribute(self, obj: Any, attr: str, default: Any) -> Any:
        """Dump an `Enrolment`: the code from it, every other field from its participant."""
        if attr.startswith("activation_code"):
            return super().get_attribute(obj, attr, default)
        return super().get_attribute(obj.participant, attr, default)


class ParticipantCreateSchema(BaseSchema):
    site = fields.String(required=True, validate=validate.Length(min=2, max=10))
    arm = fields.String(required=True, validate=validate.OneOf(ARMS))
    enrolled_on = fields.Date(required=True)
    timezone = timezone_field(required=True)
    locale = locale_field(required=True)
    reminder_time = time_of_day_field()
    diary_reminder_time = time_of_day_field()


class ParticipantUpdateSchema(BaseSchema):
    status = fields.String(validate=validate.OneOf(PARTICIPANT_STATUSES))
    reason = fields.String(validate=REASON)
    timezone = timezone_field()
    locale = locale_field()
    reminder_time = time_of_day_field()
    diary_reminder_time = time_of_day_field()


class ParticipantQuerySchema(BaseSchema):
    site = fields.String()
    status = fields.String(validate=validate.OneOf(PARTICIPANT_STATUSES))
    study_code = fields.String()


class ActivationCodeRequestSchema(BaseSchema):
    reason = fields.String(validate=REASON)


class MeSchema(ParticipantSchema):
    """The participant's own profile: the site's status bookkeeping left out."""

    class Meta(ParticipantSchema.Meta):
        exclude = ("status_reason", "status_changed_at", "created_at")


class MeUpdateSchema(BaseSchema):
    """What a participant may change about themself: nothing about site, arm or status."""

    timezone = timezone_field()
    locale = locale_field()
    reminder_time = time_of_day_field()
    diary_reminder_time = time_of_day_field()
