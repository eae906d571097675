"""Diary compliance (SPEC §3): per participant, per site, and a participant's calendar.

The counting is one SQL statement (`api.services.compliance_query`); this module turns
its rows into the report's figures and walks one participant's days for the calendar.
The study's settings come in as a value (`study`); callers outside a request may pass
theirs, the views pass the app's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from api.extensions import db
from api.models import Participant
from api.services.compliance_query import (
    D,
    P,
    X,
    _by_zone,
    _last_diary_day,
    _yesterdays,
    _zones,
    compliance_select,
    local_day,
    missed_runs_select,
)
from api.services.schedule import add_months
from api.study import StudyConfig

__all__ = [
    "P",
    "ParticipantCompliance",
    "SiteCompliance",
    "_by_zone",
    "_last_diary_day",
    "_yesterdays",
    "_zones",
    "calendar",
    "compliance_report",
    "compliance_select",
    "local_day",
    "missed_runs",
    "participant_compliance",
    "study_config",
]


def study_config() -> StudyConfig:
    """The app's study settings: the one place this package reads them from the app."""
    config: StudyConfig = current_app.extensions["study"]
    return config


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator > 0 else None


@dataclass
class ParticipantCompliance:
    participant_id: int
    study_code: str
    site: str
    arm: str
    status: str
    enrolled_on: date
    expected: int
    on_time: int
    late: int
    missing: int
    excused: int
    rate: float | None
    any_rate: float | None
    current_missed_run: int
    last_entry_date: date | None
    expected_last_14_days: int
    on_time_last_14_days: int
    rate_last_14_days: float | None
    below_threshold: bool


@dataclass
class SiteCompliance:
    site: str
    participants: int
    expected: int
    on_time: int
    late: int
    missing: int
    excused: int
    rate: float | None
    any_rate: float | None
    participants_below_threshold: int
    participants_with_missed_run: int


def _participant_row(row: Any, threshold: float) -> ParticipantCompliance:
    rate_14 = _rate(row.on_time_14, row.expected_14)
    return ParticipantCompliance(
        participant_id=row.participant_id,
        study_code=row.study_code,
        site=row.site,
        arm=row.arm,
        status=row.status,
        enrolled_on=row.enrolled_on,
        expected=row.expected,
        on_time=row.on_time,
        late=row.late,
        missing=row.expected - row.on_time - row.late,
        excused=row.excused,
        rate=_rate(row.on_time, row.expected),
        any_rate=_rate(row.on_time + row.late, row.expected),
        current_missed_run=row.current_missed_run,
        last_entry_date=row.last_entry_date,
        expected_last_14_days=row.expected_14,
        on_time_last_14_days=row.on_time_14,
        rate_last_14_days=rate_14,
        below_threshold=row.status == "active" and rate_14 is not None and rate_14 < threshold,
    )


def participant_compliance(
    where: list[Any],
    now: datetime,
    *,
    from_: date | None = None,
    to: date | None = None,
    study: StudyConfig | None = None,
) -> list[ParticipantCompliance]:
    study = study or study_config()
    stmt = compliance_select(where, now, study, from_=from_, to=to)
    if stmt is None:
        return []
    threshold = study.compliance_threshold
    return [_participant_row(row, threshold) for row in db.session.execute(stmt)]


def _site_totals(site: str, rows: list[ParticipantCompliance], min_run: int) -> SiteCompliance:
    expected = sum(r.expected for r in rows)
    on_time = sum(r.on_time for r in rows)
    late = sum(r.late for r in rows)
    return SiteCompliance(
        site=site,
        participants=len(rows),
        expected=expected,
        on_time=on_time,
        late=late,
        missing=sum(r.missing for r in rows),
        excused=sum(r.excused for r in rows),
        rate=_rate(on_time, expected),
        any_rate=_rate(on_time + late, expected),
        participants_below_threshold=sum(r.below_threshold for r in rows),
        participants_with_missed_run=sum(r.current_missed_run >= min_run for r in rows),
    )


def compliance_report(
    site_ids: list[int],
    now: datetime,
    *,
    from_: date | None = None,
    to: date | None = None,
    study: StudyConfig | None = None,
) -> dict[str, Any]:
    """Per participant, per site, and who is below the threshold over the recent window."""
    study = study or study_config()
    where = [P.c.site_id.in_(site_ids)]
    rows = participant_compliance(where, now, from_=from_, to=to, study=study)
    by_site: dict[str, list[ParticipantCompliance]] = {}
    for row in rows:
        by_site.setdefault(row.site, []).append(row)
    return {
        "from_": from_,
        "to": to,
        "generated_at": now,
        "threshold": study.compliance_threshold,
        "window_days": study.compliance_window_days,
        "sites": [
            _site_totals(site, site_rows, study.missed_diary_days)
            for site, site_rows in sorted(by_site.items())
        ],
        "participants": rows,
        "below_threshold": [row for row in rows if row.below_threshold],
    }


# The day-by-day calendar of one participant.

ON_TIME, LATE, MISSING = "on_time", "late", "missing"
EXCUSED, NOT_YET_DUE = "excused", "not_yet_due"


def calendar(
    participant: Participant,
    now: datetime,
    *,
    from_: date | None = None,
    to: date | None = None,
    study: StudyConfig | None = None,
) -> dict[str, Any]:
    """Each diary day of the range with its status; only that range's rows are read.

    The range is clamped to the participant's diary period (enrolment to month 36, or
    the day before a status change); days from local today on are `not_yet_due` unless
    an entry already exists.
    """
    study = study or study_config()
    today = local_day(participant.timezone, now)
    last = add_months(participant.enrolled_on, study.diary_months)
    if not participant.is_active and participant.status_changed_on:
        last = min(last, participant.status_changed_on - timedelta(days=1))
    first = max(from_ or participant.enrolled_on, participant.enrolled_on)
    last = min(to or today - timedelta(days=1), last)
    entries, excuses = _entries_and_excuses(participant.id, first, last)
    days = []
    day = first
    while day <= last:
        days.append(_calendar_day(day, today, entries.get(day), excuses.get(day)))
        day += timedelta(days=1)
    where = [P.c.id == participant.id]
    summary = participant_compliance(where, now, from_=from_, to=to, study=study)
    return {
        "participant_id": participant.id,
        "study_code": participant.study_code,
        "from_": first,
        "to": last,
        "summary": asdict(summary[0]) if summary else None,
        "days": days,
    }


def _entries_and_excuses(
    participant_id: int, first: date, last: date
) -> tuple[dict[date, tuple[int, bool]], dict[date, str]]:
    """The entries (id, late) and the excuses (reason) of one participant's days."""
    entries = {
        day: (entry_id, late)
        for entry_id, day, late in db.session.execute(
            select(D.c.id, D.c.diary_date, D.c.late).where(
                D.c.participant_id == participant_id,
                D.c.diary_date >= first,
                D.c.diary_date <= last,
            )
        )
    }
    excuses = dict(
        db.session.execute(
            select(X.c.day, X.c.reason).where(
                X.c.participant_id == participant_id, X.c.day >= first, X.c.day <= last
            )
        ).all()
    )
    return entries, excuses


def _calendar_day(
    day: date, today: date, entry: tuple[int, bool] | None, excuse: str | None
) -> dict[str, Any]:
    if entry is not None:
        status = LATE if entry[1] else ON_TIME
    elif excuse is not None:
        status = EXCUSED
    elif day >= today:
        status = NOT_YET_DUE
    else:
        status = MISSING
    return {
        "date": day,
        "status": status,
        "entry_id": entry[0] if entry else None,
        "excused_reason": excuse,
    }


def missed_runs(now: datetime, min_run: int, study: StudyConfig | None = None) -> list[Any]:
    """Active participants whose current run of missed, non-excused days is >= `min_run`.

    Rows of (participant_id, run_start, run). Only the two "last covered day" look-ups
    per participant are read (index probes), not their entries.
    """
    stmt = missed_runs_select([P.c.status == "active"], now, study or study_config(), min_run)
    return [] if stmt is None else list(db.session.execute(stmt))
