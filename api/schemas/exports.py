"""Query and answer schemas of the standard exports and the symptom outcome report."""

from marshmallow import fields, validate

from api.schemas.base import BaseSchema

ARMS = ("msc", "control")


class SdtmQuerySchema(BaseSchema):
    site = fields.String(validate=validate.Length(min=2, max=10))


class SymptomReportQuerySchema(BaseSchema):
    site = fields.String(validate=validate.Length(min=2, max=10))
    arm = fields.String(validate=validate.OneOf(ARMS))


class EstimateSchema(BaseSchema):
    n = fields.Integer(metadata={"description": "Participants contributing"})
    mean = fields.Float(allow_none=True, metadata={"description": "Mean of participants' means"})
    sd = fields.Float(allow_none=True)
    ci_low = fields.Float(allow_none=True, metadata={"description": "95 % CI (Student's t)"})
    ci_high = fields.Float(allow_none=True)


class SymptomEstimateSchema(EstimateSchema):
    change = fields.Nested(
        EstimateSchema, metadata={"description": "Change from each participant's month-0 mean"}
    )


class SymptomMonthSchema(BaseSchema):
    arm = fields.String()
    month = fields.Integer(metadata={"description": "Study month since enrolment (0-36)"})
    participants = fields.Integer()
    diary_days = fields.Integer()
    share_grade_3_or_more = fields.Float(
        allow_none=True, metadata={"description": "Share of diary days with discomfort grade >= 3"}
    )
    symptoms = fields.Dict(keys=fields.String(), values=fields.Nested(SymptomEstimateSchema))


class SymptomReportSchema(BaseSchema):
    site = fields.String(allow_none=True)
    arm = fields.String(allow_none=True)
    generated_at = fields.AwareDateTime()
    rows = fields.List(fields.Nested(SymptomMonthSchema))
