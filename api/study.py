"""The study configuration (SPEC §1): one data file, validated at start-up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import time
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

EVENT_KINDS = ("infusion", "lab_visit", "follow_up")


class StudyConfigError(RuntimeError):
    """The study configuration file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class EventPlan:
    kind: str
    arms: tuple[str, ...]
    months: tuple[int, ...]


@dataclass(frozen=True)
class SiteConfig:
    code: str
    name: str
    city: str
    timezone: str


@dataclass(frozen=True)
class StudyConfig:
    arms: dict[str, str]
    events: tuple[EventPlan, ...]
    visit_window_days: int
    diary_months: int
    backfill_days: int
    clock_skew_minutes: int
    event_offsets_days: tuple[int, ...]
    reminder_time: time
    diary_reminder_time: time
    quiet_hours_start: time
    quiet_hours_end: time
    symptom_grade: int
    symptom_urgent_grade: int
    missed_diary_days: int
    compliance_threshold: float
    compliance_window_days: int
    sae_report_hours: int
    locales: tuple[str, ...]
    default_locale: str
    sites: tuple[SiteConfig, ...]


def _valid_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown time zone {name!r}") from exc


_HHMM = validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="must be HH:MM")
_MONTHS = fields.List(fields.Integer(validate=validate.Range(min=0, max=120)), required=True)


class _EventSchema(Schema):
    arms = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    months = _MONTHS


class _SiteSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9]{2,10}$"))
    name = fields.String(required=True, validate=validate.Length(min=1))
    city = fields.String(required=True, validate=validate.Length(min=1))
    timezone = fields.String(required=True, validate=_valid_timezone)


class _DiarySchema(Schema):
    months = fields.Integer(required=True, validate=validate.Range(min=1))
    backfill_days = fields.Integer(required=True, validate=validate.Range(min=0, max=30))
    clock_skew_minutes = fields.Integer(required=True, validate=validate.Range(min=0, max=60))


class _RemindersSchema(Schema):
    event_offsets_days = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=30)), required=True
    )
    reminder_time = fields.String(required=True, validate=_HHMM)
    diary_reminder_time = fields.String(required=True, validate=_HHMM)
    quiet_hours_start = fields.String(required=True, validate=_HHMM)
    quiet_hours_end = fields.String(required=True, validate=_HHMM)


class _AlertsSchema(Schema):
    symptom_grade = fields.Integer(required=True, validate=validate.Range(min=0, max=4))
    symptom_urgent_grade = fields.Integer(required=True, validate=validate.Range(min=0, max=4))
    missed_diary_days = fields.Integer(required=True, validate=validate.Range(min=1))
    compliance_threshold = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    compliance_window_days = fields.Integer(required=True, validate=validate.Range(min=1))


class _StudySchema(Schema):
    study = fields.String()
    arms = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    schedule = fields.Dict(
        keys=fields.String(validate=validate.OneOf(EVENT_KINDS)),
        values=fields.Nested(_EventSchema),
        required=True,
    )
    visit_window_days = fields.Integer(required=True, validate=validate.Range(min=0, max=60))
    diary = fields.Nested(_DiarySchema, required=True)
    reminders = fields.Nested(_RemindersSchema, required=True)
    alerts = fields.Nested(_AlertsSchema, required=True)
    serious_adverse_event_report_hours = fields.Integer(
        required=True, validate=validate.Range(min=1)
    )
    locales = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    default_locale = fields.String(required=True)
    sites = fields.List(fields.Nested(_SiteSchema), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _consistent(self, data: dict[str, Any], **_kwargs: object) -> None:
        for kind, plan in data["schedule"].items():
            unknown = set(plan["arms"]) - set(data["arms"])
            if unknown:
                raise ValidationError(f"unknown arms {sorted(unknown)}", f"schedule.{kind}")
        if data["default_locale"] not in data["locales"]:
            raise ValidationError("must be one of locales", "default_locale")
        codes = [s["code"] for s in data["sites"]]
        if len(codes) != len(set(codes)):
            raise ValidationError("site codes must be unique", "sites")


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_study_config(raw: dict[str, Any]) -> StudyConfig:
    """Validate a decoded study configuration and turn it into a `StudyConfig`."""
    try:
        data = _StudySchema().load(raw)
    except ValidationError as exc:
        raise StudyConfigError(f"invalid study configuration: {exc.messages}") from exc
    rem, alerts, diary = data["reminders"], data["alerts"], data["diary"]
    return StudyConfig(
        arms=dict(data["arms"]),
        events=tuple(
            EventPlan(kind, tuple(plan["arms"]), tuple(sorted(plan["months"])))
            for kind, plan in sorted(
                data["schedule"].items(), key=lambda kv: EVENT_KINDS.index(kv[0])
            )
        ),
        visit_window_days=data["visit_window_days"],
        diary_months=diary["months"],
        backfill_days=diary["backfill_days"],
        clock_skew_minutes=diary["clock_skew_minutes"],
        event_offsets_days=tuple(sorted(rem["event_offsets_days"], reverse=True)),
        reminder_time=_hhmm(rem["reminder_time"]),
        diary_reminder_time=_hhmm(rem["diary_reminder_time"]),
        quiet_hours_start=_hhmm(rem["quiet_hours_start"]),
        quiet_hours_end=_hhmm(rem["quiet_hours_end"]),
        symptom_grade=alerts["symptom_grade"],
        symptom_urgent_grade=alerts["symptom_urgent_grade"],
        missed_diary_days=alerts["missed_diary_days"],
        compliance_threshold=alerts["compliance_threshold"],
        compliance_window_days=alerts["compliance_window_days"],
        sae_report_hours=data["serious_adverse_event_report_hours"],
        locales=tuple(data["locales"]),
        default_locale=data["default_locale"],
        sites=tuple(SiteConfig(**site) for site in data["sites"]),
    )


def load_study_config(path: str | None = None) -> StudyConfig:
    """Load the study configuration from `path`, or the file shipped with the package."""
    try:
        if path:
            text = Path(path).read_text(encoding="utf-8")
        else:
            text = resources.files("api").joinpath("study_config.json").read_text("utf-8")
        raw = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise StudyConfigError(
            f"cannot read study configuration {path or '(built-in)'}: {exc}"
        ) from exc
    if not isinstance(raw, dict):
        raise StudyConfigError("study configuration must be a JSON object")
    return parse_study_config(raw)
