"""The compliance statement (SPEC §3): one SQL query for any set of participants.

For each participant it works out, from their own time zone, the days the diary was
expected:

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

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Select, Subquery, and_, case, func, literal, or_, select, type_coerce
from sqlalchemy.sql.elements import ColumnElement

from api.extensions import db
from api.models import DiaryEntry, ExcusedDay, Participant, Site
from api.services.schedule import add_months
from api.services.sqldates import add_days, days_between, greatest, least
from api.services.sqldates import add_months as add_months_sql
from api.study import StudyConfig

P = Participant.__table__
D = DiaryEntry.__table__
X = ExcusedDay.__table__
S = Site.__table__


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
    cutoff = add_months(last_day, -months)
    while add_months(cutoff + timedelta(days=1), months) < last_day:
        cutoff += timedelta(days=1)
    return cutoff


def _last_diary_day(study: StudyConfig) -> ColumnElement[Any]:
    """The last day of the diary period: the day of month `diary_months` (included, as the
    diary accepts entries for it)."""
    return add_months_sql(P.c.enrolled_on, study.diary_months)


def _in_range(day: Any, lo: Any, hi: Any) -> ColumnElement[bool]:
    return and_(day >= lo, day <= hi)


def compliance_select(
    where: list[Any],
    now: datetime,
    study: StudyConfig,
    *,
    from_: date | None = None,
    to: date | None = None,
) -> Select[Any] | None:
    """The per-participant compliance statement for the participants matching `where`."""
    zones = _zones(where)
    if not zones:
        return None
    yesterdays = _yesterdays(zones, now)
    window = study.compliance_window_days
    window_start = _by_zone({z: d - timedelta(days=window - 1) for z, d in yesterdays.items()})
    bounds = _bounds(where, study, _by_zone(yesterdays), window_start, from_, to)
    latest = max(yesterdays.values())
    entries = _entry_counts(where, study, _by_zone(yesterdays), window_start, latest, from_, to)
    return _report_select(bounds, entries, _excused_counts(bounds))


def _bounds(
    where: list[Any],
    study: StudyConfig,
    yesterday: ColumnElement[Any],
    window_start: ColumnElement[Any],
    from_: date | None,
    to: date | None,
) -> Subquery:
    """Each participant's range of expected days, the recent window and the run's end."""
    diary_last = _last_diary_day(study)
    active_last = case(
        (P.c.status == "active", yesterday),
        else_=func.coalesce(add_days(P.c.status_changed_on, -1), yesterday),
    )
    last_day = least(diary_last, active_last, yesterday)
    start = greatest(P.c.enrolled_on, _date(from_)) if from_ else P.c.enrolled_on
    end = least(last_day, _date(to)) if to else last_day
    return (
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


def _excused_counts(bounds: Subquery) -> Subquery:
    """Excused days without an entry, in the range and in the recent window."""
    b = bounds.c
    excused_entry = D.alias("excused_entry")
    return (
        select(
            b.id.label("pid"),
            func.count().filter(_in_range(X.c.day, b.s, b.e)).label("excused"),
            func.count().filter(_in_range(X.c.day, b.ws, b.we)).label("excused_14"),
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


def _last_covered(participant_id: Any, up_to: Any, enrolled_on: Any) -> ColumnElement[Any]:
    """The last day up to `up_to` with an entry or an excuse (the day before enrolment if
    none): two index probes per participant."""
    before_enrolment = add_days(enrolled_on, -1)
    last_entry = select(func.max(D.c.diary_date)).where(
        D.c.participant_id == participant_id, D.c.diary_date <= up_to
    )
    last_excuse = select(func.max(X.c.day)).where(
        X.c.participant_id == participant_id, X.c.day <= up_to
    )
    return greatest(
        func.coalesce(last_entry.scalar_subquery(), before_enrolment),
        func.coalesce(last_excuse.scalar_subquery(), before_enrolment),
    )


def _report_select(bounds: Subquery, entries: Subquery, excused: Subquery) -> Select[Any]:
    b = bounds.c
    last_covered = _last_covered(b.id, b.y, b.enrolled_on)
    last_entry = select(func.max(D.c.diary_date)).where(D.c.participant_id == b.id)
    run = case(
        (b.status == "active", greatest(days_between(last_covered, b.run_end), 0)),
        else_=0,
    )
    span = greatest(days_between(b.s, b.e) + 1, 0)
    span_14 = greatest(days_between(b.ws, b.we) + 1, 0)
    excused_days = func.coalesce(excused.c.excused, 0)
    return (
        select(
            b.id.label("participant_id"),
            b.study_code,
            S.c.code.label("site"),
            b.arm,
            b.status,
            type_coerce(b.enrolled_on, Date()).label("enrolled_on"),
            (span - excused_days).label("expected"),
            func.coalesce(entries.c.on_time, 0).label("on_time"),
            func.coalesce(entries.c.late, 0).label("late"),
            excused_days.label("excused"),
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
    study: StudyConfig,
    yesterday: ColumnElement[Any],
    window_start: ColumnElement[Any],
    latest_yesterday: date,
    from_: date | None,
    to: date | None,
) -> Subquery:
    """On-time and late entries per participant, in the range and in the recent window.

    The same bounds as `compliance_select`'s, written so each entry row is tested only
    with comparisons (no month arithmetic per row: PostgreSQL would evaluate it for each
    of millions of rows), which keeps this as fast as a plain GROUP BY.
    """
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


def missed_runs_select(where: list[Any], now: datetime, study: StudyConfig, min_run: int) -> Any:
    """(participant_id, run_start, run) of the participants matching `where` whose current
    run of missed, non-excused days is >= `min_run`; None if there are none to ask about."""
    zones = _zones(where)
    if not zones:
        return None
    yesterday = _by_zone(_yesterdays(zones, now))
    run_end = least(yesterday, _last_diary_day(study))
    last_covered = _last_covered(P.c.id, yesterday, P.c.enrolled_on)
    runs = (
        select(
            P.c.id.label("participant_id"),
            type_coerce(add_days(last_covered, 1), Date()).label("run_start"),
            days_between(last_covered, run_end).label("run"),
        )
        .where(*where)
        .subquery("runs")
    )
    return (
        select(runs.c.participant_id, runs.c.run_start, runs.c.run)
        .where(runs.c.run >= min_run)
        .order_by(runs.c.participant_id)
    )
