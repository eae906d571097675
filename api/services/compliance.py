"""Diary compliance (SPEC §3): counted by the database, per participant, per site.

One SQL statement answers for any set of participants. For each participant it works
out, from their own time zone, the days the diary was expected:

    first = max(from, enrolled_on)
    last  = min(to, local yesterday, last diary day (month 36), day before a status change)
    expected = days in [first, last] - excused days in it that have no entry

and counts the entries in that range with `count(*) FILTER (…)`. An excuse only ever
pardons a *missing* day: an entry made on an excused day still counts (on time or
late) and the day stays expected, so rates never exceed 1. missing = expected -
on-time - late. The current run of missed days is the number of days from the last
day that has an entry or an excuse up to local yesterday (0 for inactive participants).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from flask import current_app
from sqlalchemy import (
    Date,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement

from api.extensions import db
from api.models import DiaryEntry, ExcusedDay, Participant, Site
from api.services.sqldates import add_days, add_months, days_between, greatest, least
from api.study import StudyConfig

P = Participant.__table__
D = DiaryEntry.__table__
X = ExcusedDay.__table__
S = Site.__table__


def study_config() -> StudyConfig:
    return current_app.extensions["study"]


def local_day(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def _date(value: date) -> ColumnElement[Any]:
    return literal(value, Date())


def _zones(where: list[Any]) -> list[str]:
    return sorted(db.session.scalars(select(P.c.timezone).where(*where).distinct()).all())


def _by_zone(days: dict[str, date]) -> ColumnElement[Any]:
    """A CASE over the participant's time zone (there are few) giving a precomputed day."""
    return case({zone: _date(day) for zone, day in days.items()}, value=P.c.timezone)


def _yesterdays(zones: list[str], now: datetime) -> dict[str, date]:
    return {zone: local_day(zone, now) - timedelta(days=1) for zone in zones}


def _diary_cutoff(last_day: date, months: int) -> date:
    """Participants enrolled after this day cannot have passed month `months` by `last_day`.

    Lets the per-entry filter skip the month arithmetic for all but such old enrolments.
    """
    cutoff = last_day - relativedelta(months=months)
    while add_months_py(cutoff + timedelta(days=1), months) < last_day:
        cutoff += timedelta(days=1)
    return cutoff


def _last_diary_day(study: StudyConfig) -> ColumnElement[Any]:
    """The last day of the diary period: the day of month `diary_months` (included, as the
    diary accepts entries for it)."""
    return add_months(P.c.enrolled_on, study.diary_months)


def compliance_select(
    where: list[Any],
    now: datetime,
    *,
    from_: date | None = None,
    to: date | None = None,
) -> Select[Any] | None:
    """The per-participant compliance statement for the participants matching `where`."""
    study = study_config()
    zones = _zones(where)
    if not zones:
        return None
    yesterdays = _yesterdays(zones, now)
    yesterday = _by_zone(yesterdays)
    window = study.compliance_window_days
    diary_last = _last_diary_day(study)
    active_last = case(
        (P.c.status == "active", yesterday),
        else_=func.coalesce(add_days(P.c.status_changed_on, -1), yesterday),
    )
    last_day = least(diary_last, active_last, yesterday)
    start = greatest(P.c.enrolled_on, _date(from_)) if from_ else P.c.enrolled_on
    end = least(last_day, _date(to)) if to else last_day
    window_start = _by_zone({z: d - timedelta(days=window - 1) for z, d in yesterdays.items()})
    bounds = (
        select(
            P.c.id,
            P.c.site_id,
            P.c.study_code,
            P.c.arm,
            P.c.status,
            P.c.enrolled_on,
            yesterday.label("y"),
            start.label("s"),
            end.label("e"),
            greatest(P.c.enrolled_on, window_start).label("ws"),
            last_day.label("we"),
            least(yesterday, diary_last).label("run_end"),
        )
        .where(*where)
        .subquery("bounds")
    )
    b = bounds.c

    def in_range(day: Any, lo: Any, hi: Any) -> ColumnElement[bool]:
        return and_(day >= lo, day <= hi)

    entries = _entry_counts(where, yesterday, window_start, max(yesterdays.values()), from_, to)
    excused_entry = D.alias("excused_entry")
    excused = (
        select(
            b.id.label("pid"),
            func.count().filter(in_range(X.c.day, b.s, b.e)).label("excused"),
            func.count().filter(in_range(X.c.day, b.ws, b.we)).label("excused_14"),
        )
        .select_from(
            bounds.join(X, X.c.participant_id == b.id).outerjoin(
                excused_entry,
                and_(
                    excused_entry.c.participant_id == X.c.participant_id,
                    excused_entry.c.diary_date == X.c.day,
                ),
            )
        )
        .where(excused_entry.c.id.is_(None))
        .group_by(b.id)
        .subquery("excused")
    )
    before_enrolment = add_days(b.enrolled_on, -1)
    last_entry = select(func.max(D.c.diary_date)).where(D.c.participant_id == b.id)
    last_entry_by_y = last_entry.where(D.c.diary_date <= b.y)
    last_excuse_by_y = select(func.max(X.c.day)).where(X.c.participant_id == b.id, X.c.day <= b.y)
    last_covered = greatest(
        func.coalesce(last_entry_by_y.scalar_subquery(), before_enrolment),
        func.coalesce(last_excuse_by_y.scalar_subquery(), before_enrolment),
    )
    run = case(
        (b.status == "active", greatest(days_between(last_covered, b.run_end), 0)),
        else_=0,
    )
    on_time = func.coalesce(entries.c.on_time, 0)
    late = func.coalesce(entries.c.late, 0)
    span = greatest(days_between(b.s, b.e) + 1, 0)
    span_14 = greatest(days_between(b.ws, b.we) + 1, 0)
    return (
        select(
            b.id.label("participant_id"),
            b.study_code,
            S.c.code.label("site"),
            b.arm,
            b.status,
            type_coerce(b.enrolled_on, Date()).label("enrolled_on"),
            (span - func.coalesce(excused.c.excused, 0)).label("expected"),
            on_time.label("on_time"),
            late.label("late"),
            func.coalesce(excused.c.excused, 0).label("excused"),
            run.label("current_missed_run"),
            type_coerce(add_days(last_covered, 1), Date()).label("run_start"),
            type_coerce(last_entry.scalar_subquery(), Date()).label("last_entry_date"),
            (span_14 - func.coalesce(excused.c.excused_14, 0)).label("expected_14"),
            func.coalesce(entries.c.on_time_14, 0).label("on_time_14"),
            func.coalesce(entries.c.late_14, 0).label("late_14"),
        )
        .select_from(
            bounds.join(S, S.c.id == b.site_id)
            .outerjoin(entries, entries.c.pid == b.id)
            .outerjoin(excused, excused.c.pid == b.id)
        )
        .order_by(S.c.code, b.study_code)
    )


def _entry_counts(
    where: list[Any],
    yesterday: ColumnElement[Any],
    window_start: ColumnElement[Any],
    latest_yesterday: date,
    from_: date | None,
    to: date | None,
) -> Any:
    """On-time and late entries per participant, in the range and in the recent window.

    The same bounds as `compliance_select`'s, written so each entry row is tested only
    with comparisons (no month arithmetic per row: PostgreSQL would evaluate it for each
    of millions of rows), which keeps this as fast as a plain GROUP BY.
    """
    study = study_config()
    day = D.c.diary_date
    active = or_(P.c.status == "active", day < P.c.status_changed_on)
    cutoff = _diary_cutoff(latest_yesterday, study.diary_months)
    in_period = or_(P.c.enrolled_on > cutoff, day <= _last_diary_day(study))
    common = [day >= P.c.enrolled_on, day <= yesterday, active, in_period]
    in_range = [*common]
    if from_:
        in_range.append(day >= _date(from_))
    if to:
        in_range.append(day <= _date(to))
    recent = [*common, day >= window_start]
    on_time, late = D.c.late.is_(False), D.c.late.is_(True)
    return (
        select(
            P.c.id.label("pid"),
            func.count().filter(*in_range, on_time).label("on_time"),
            func.count().filter(*in_range, late).label("late"),
            func.count().filter(*recent, on_time).label("on_time_14"),
            func.count().filter(*recent, late).label("late_14"),
        )
        .select_from(P.join(D, D.c.participant_id == P.c.id))
        .where(*where)
        .group_by(P.c.id)
        .subquery("entries")
    )


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
    where: list[Any], now: datetime, *, from_: date | None = None, to: date | None = None
) -> list[ParticipantCompliance]:
    stmt = compliance_select(where, now, from_=from_, to=to)
    if stmt is None:
        return []
    threshold = study_config().compliance_threshold
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
    site_ids: list[int], now: datetime, *, from_: date | None = None, to: date | None = None
) -> dict[str, Any]:
    """Per participant, per site, and who is below the threshold over the recent window."""
    study = study_config()
    rows = participant_compliance([P.c.site_id.in_(site_ids)], now, from_=from_, to=to)
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
    participant: Participant, now: datetime, *, from_: date | None = None, to: date | None = None
) -> dict[str, Any]:
    """Each diary day of the range with its status; only that range's rows are read.

    The range is clamped to the participant's diary period (enrolment to month 36, or
    the day before a status change); days from local today on are `not_yet_due` unless
    an entry already exists.
    """
    study = study_config()
    today = local_day(participant.timezone, now)
    last = add_months_py(participant.enrolled_on, study.diary_months)
    if not participant.is_active and participant.status_changed_on:
        last = min(last, participant.status_changed_on - timedelta(days=1))
    first = max(from_ or participant.enrolled_on, participant.enrolled_on)
    last = min(to or today - timedelta(days=1), last)
    entries = {
        day: (entry_id, late)
        for entry_id, day, late in db.session.execute(
            select(D.c.id, D.c.diary_date, D.c.late).where(
                D.c.participant_id == participant.id,
                D.c.diary_date >= first,
                D.c.diary_date <= last,
            )
        )
    }
    excuses = dict(
        db.session.execute(
            select(X.c.day, X.c.reason).where(
                X.c.participant_id == participant.id, X.c.day >= first, X.c.day <= last
            )
        ).all()
    )
    days = []
    day = first
    while day <= last:
        days.append(_calendar_day(day, today, entries.get(day), excuses.get(day)))
        day += timedelta(days=1)
    summary = participant_compliance([P.c.id == participant.id], now, from_=from_, to=to)
    return {
        "participant_id": participant.id,
        "study_code": participant.study_code,
        "from_": first,
        "to": last,
        "summary": asdict(summary[0]) if summary else None,
        "days": days,
    }


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


def add_months_py(start: date, months: int) -> date:
    from api.services.schedule import add_months as schedule_add_months

    return schedule_add_months(start, months)


def missed_runs(now: datetime, min_run: int) -> list[Any]:
    """Active participants whose current run of missed, non-excused days is >= `min_run`.

    Rows of (participant_id, run_start, run). Only the two "last covered day" look-ups
    per participant are read (index probes), not their entries.
    """
    where = [P.c.status == "active"]
    zones = _zones(where)
    if not zones:
        return []
    yesterday = _by_zone(_yesterdays(zones, now))
    run_end = least(yesterday, _last_diary_day(study_config()))
    before_enrolment = add_days(P.c.enrolled_on, -1)
    last_entry = select(func.max(D.c.diary_date)).where(
        D.c.participant_id == P.c.id, D.c.diary_date <= yesterday
    )
    last_excuse = select(func.max(X.c.day)).where(
        X.c.participant_id == P.c.id, X.c.day <= yesterday
    )
    last_covered = greatest(
        func.coalesce(last_entry.scalar_subquery(), before_enrolment),
        func.coalesce(last_excuse.scalar_subquery(), before_enrolment),
    )
    runs = (
        select(
            P.c.id.label("participant_id"),
            type_coerce(add_days(last_covered, 1), Date()).label("run_start"),
            days_between(last_covered, run_end).label("run"),
        )
        .where(*where)
        .subquery("runs")
    )
    return list(
        db.session.execute(
            select(runs.c.participant_id, runs.c.run_start, runs.c.run)
            .where(runs.c.run >= min_run)
            .order_by(runs.c.participant_id)
        )
    )
