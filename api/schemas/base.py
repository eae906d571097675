"""Shared schema building blocks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from api.models.base import INTEGER_MAX

HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Must be a local time HH:MM.")
REASON = validate.Length(min=3, max=1000)


INT32 = validate.Range(min=-INTEGER_MAX - 1, max=INTEGER_MAX)
# PostgreSQL text cannot hold NUL; refusing it here names the field instead of a 500.
NO_NUL = validate.Regexp(r"^[^\x00]*$", error="Must not contain NUL characters.")

# Every day and instant the service accepts (API and CLI) lies in these years, as written
# (an instant's own date, before its UTC offset is applied). Wide enough for any date of
# the trial, narrow enough that converting any accepted instant to UTC, or adding the
# study's months and a reminder's offset to any accepted day, stays inside Python's
# datetime range (years 1-9999), so no well-formed value can crash a conversion.
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2100, 12, 31)
IN_RANGE_MESSAGE = (
    f"Must be between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()} (inclusive)."
)
# The years as a pattern (this form needs a century and the first year after it).
assert EARLIEST_DAY.year % 100 == 0 and LATEST_DAY.year == EARLIEST_DAY.year + 100
_YEAR = rf"({EARLIEST_DAY.year // 100}\d\d|{LATEST_DAY.year})"
_DAY = rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
# What OpenAPI shows: format date / date-time, limited to the years above by a pattern.
DATE_PATTERN = rf"^{_DAY}$"
DATETIME_PATTERN = (
    rf"^{_DAY}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{{1,6}})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


def day_in_range(value: date | datetime) -> date | datetime:
    """Refuse a day or instant outside EARLIEST_DAY..LATEST_DAY, judged on its own date.

    An aware instant is judged before any conversion (`value.date()` is its date as
    written), so the check itself cannot overflow.
    """
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValidationError(IN_RANGE_MESSAGE)
    return value


def _bound_day_field(field_obj: fields.Field[Any]) -> None:
    """Attach the range check to a loadable Date/DateTime field and document it."""
    if any(v is day_in_range for v in field_obj.validators):
        return
    field_obj.validators.append(day_in_range)
    is_instant = isinstance(field_obj, fields.DateTime)
    # In place: bound fields are shallow copies sharing the declared field's validators
    # and metadata, which are what the OpenAPI document is built from. (marshmallow types
    # `metadata` as the Mapping it was declared with: the schemas here declare dicts.)
    metadata = cast(dict[str, Any], field_obj.metadata)
    metadata.update(
        {
            "pattern": DATETIME_PATTERN if is_instant else DATE_PATTERN,
            "description": " ".join(
                part.rstrip(".") + "."
                for part in (metadata.get("description"), IN_RANGE_MESSAGE)
                if part
            ),
        }
    )


class BaseSchema(Schema):
    """Refuses unknown fields: a typo or a mass-assignment attempt is a 422, not silence.

    Every accepted integer fits the database's `integer`, every accepted text is free
    of NUL characters and every accepted day or instant lies in EARLIEST_DAY..LATEST_DAY;
    the bounds appear in the OpenAPI document (minimum/maximum, pattern, description), so
    what the document calls valid the database can store and the code can convert.
    """

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field[Any]) -> None:
        if field_obj.dump_only:
            return
        _bound(field_obj)


def _bound(field_obj: fields.Field[Any]) -> None:
    """Adds the storable-value rules to a field and, for a list, to its items.

    The items matter as much as the field: a site code with a NUL inside a list of
    codes reached PostgreSQL and came back as a 500 before the list's items were bound.
    """
    if isinstance(field_obj, fields.List):
        _bound(field_obj.inner)
        return
    if type(field_obj) is fields.Integer and not any(
        isinstance(v, validate.Range) and v.max is not None for v in field_obj.validators
    ):
        field_obj.validators.append(INT32)
    if type(field_obj) is fields.String and not any(
        isinstance(v, validate.OneOf | validate.Regexp) for v in field_obj.validators
    ):
        field_obj.validators.append(NO_NUL)
    if isinstance(field_obj, fields.Date | fields.DateTime):
        _bound_day_field(field_obj)


def _loadable(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


# The IANA zone names this machine knows, listed in OpenAPI as the field's enum.
TIMEZONES = tuple(sorted(name for name in available_timezones() if _loadable(name)))


def timezone_field(**kwargs: Any) -> fields.String:
    return fields.String(
        validate=validate.OneOf(TIMEZONES, error="Unknown IANA time zone."),
        **kwargs,
    )


def locale_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(("zh-CN", "en")), **kwargs)


def time_of_day_field(**kwargs: Any) -> fields.String:
    return fields.String(validate=HHMM, **kwargs)


class DateRangeQuerySchema(BaseSchema):
    """`from`/`to` query parameters (both optional, inclusive)."""

    from_ = fields.Date(data_key="from")
    to = fields.Date()
