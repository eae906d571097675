"""Shared schema building blocks."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import RAISE, Schema, fields, validate

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Must be a local time HH:MM.")
REASON = validate.Length(min=3, max=1000)


class BaseSchema(Schema):
    """Refuses unknown fields: a typo or a mass-assignment attempt is a 422, not silence."""

    class Meta:
        unknown = RAISE


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
