"""Shared schema building blocks."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import RAISE, Schema, fields, validate

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Must be a local time HH:MM.")
REASON = validate.Length(min=3, max=1000)


INT32 = validate.Range(min=-(2**31), max=2**31 - 1)
# PostgreSQL text cannot hold NUL; refusing it here names the field instead of a 500.
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Must not contain NUL characters.")


class BaseSchema(Schema):
    """Refuses unknown fields: a typo or a mass-assignment attempt is a 422, not silence.

    Every accepted integer fits the database's `integer` and every accepted text is free
    of NUL characters; both bounds appear in the OpenAPI document (minimum/maximum,
    pattern), so what the document calls valid the database can store.
    """

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if field_obj.dump_only:
            return
        if type(field_obj) is fields.Integer and not any(
            isinstance(v, validate.Range) and v.max is not None for v in field_obj.validators
        ):
            field_obj.validators.append(INT32)
        if type(field_obj) is fields.String and not any(
            isinstance(v, validate.OneOf | validate.Regexp) for v in field_obj.validators
        ):
            field_obj.validators.append(NO_NUL)


def _loadable(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# The IANA zone names this machine knows, listed in OpenAPI as the field's enum.
TIMEZONES = tuple(sorted(name for name in available_timezones() if _loadable(name)))


def timezone_field(**kwargs: object) -> fields.String:
    return fields.String(
        validate=validate.OneOf(TIMEZONES, error="Unknown IANA time zone."),
        **kwargs,  # type: ignore[arg-type]
    )


def locale_field(**kwargs: object) -> fields.String:
    return fields.String(validate=validate.OneOf(("zh-CN", "en")), **kwargs)  # type: ignore[arg-type]


def time_of_day_field(**kwargs: object) -> fields.String:
    return fields.String(validate=HHMM, **kwargs)  # type: ignore[arg-type]


class DateRangeQuerySchema(BaseSchema):
    """`from`/`to` query parameters (both optional, inclusive)."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()
