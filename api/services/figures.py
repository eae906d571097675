"""Figures the compliance page charts, counted by the database on PostgreSQL and SQLite.

- The daily on-time rate of a set of sites: for each day, the participants whose diary
  was expected that day (the same bounds as `compliance_select`: from enrolment to the
  local yesterday, the diary's last day and the day before a status change; an excused
  day without an entry is not expected) and how many of them filled it on time.
- The reminder funnel, per kind of reminder: sent -> delivered (FCM accepted the message
  for at least one phone) -> opened (the app reported the tap) -> diary filled within
  3 hours of sending (an entry of that participant received in those 3 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from api.extensions import db
from api.models import (
    DiaryEntry,
    ExcusedDay,
    Participant,
    Reminder,
    ReminderDelivery,
)
from api.models.reminders import REMINDER_KINDS
from api.services.compliance import (
    _by_zone,
    _last_diary_day,
    _yesterdays,
    _zones,
    study_config,
)
from api.services.sqldates import add_days, least

P = Participant.__table__
D = DiaryEntry.__table__
X = ExcusedDay.__table__
R = Reminder.__table__
RD = ReminderDelivery.__table__

FILLED_WITHIN = timedelta(hours=3)
MOST_DAYS = 366


@dataclass(frozen=True)
class DailyRate:
    day: date
    expected: int
    on_time: int

    @property
    def rate(self) -> float | None:
        return round(self.on_time / self.expected, 4) if self.expected else None


@dataclass(frozen=True)
class FunnelRow:
    kind: str
    sent: int
    delivered: int
    opened: int
    filled_within_3h: int


class _within(FunctionElement[bool]):
    """`_within(later, earlier, seconds)`: `earlier <= later <= earlier + seconds`."""

    inherit_cache = True


@compiles(_within)
def _within_pg(element: _within, compiler: Any, **kw: Any) -> str:
    later, earlier, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"({later} >= {earlier} AND "
        f"{later} <= {earlier} + make_interval(secs => CAST({seconds} AS INTEGER)))"
    )


@compiles(_within, "sqlite")
def _within_sqlite(element: _within, compiler: Any, **kw: Any) -> str:
    # SQLite keeps instants as ISO text: compare them as Julian day numbers.
    later, earlier, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"(julianday({later}) >= julianday({earlier}) AND "
        f"julianday({later}) <= julianday({earlier}) + CAST({seconds} AS REAL) / 86400.0)"
    )


def daily_on_time_rates(
    site_ids: list[int], now: datetime, first: date, last: date
) -> list[DailyRate]:
    """One row per day in [first, last] (at most a year), oldest first."""
    if last < first:
        return []
    first = max(first, last - timedelta(days=MOST_DAYS - 1))
    days_list = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    where = [P.c.site_id.in_(site_ids)]
    zones = _zones(where)
    if not zones:
        return [DailyRate(day, 0, 0) for day in days_list]
    stmt = _daily_counts(days_list, where, _participant_last_day(zones, now))
    counted = {_as_date(row.day): row for row in db.session.execute(stmt)}
    return [
        DailyRate(day, counted[day].expected, counted[day].on_time)
        if day in counted
        else DailyRate(day, 0, 0)
        for day in days_list
    ]


def _participant_last_day(zones: list[str], now: datetime) -> ColumnElement[Any]:
    """A participant's last expected day: the diary's end, the day before a status
    change, the local yesterday, whichever comes first."""
    yesterday = _by_zone(_yesterdays(zones, now))
    active_last = case(
        (P.c.status == "active", yesterday),
        else_=func.coalesce(add_days(P.c.status_changed_on, -1), yesterday),
    )
    return least(_last_diary_day(study_config()), active_last, yesterday)


def _daily_counts(
    days_list: list[date], where: list[Any], participant_last: ColumnElement[Any]
) -> Select[Any]:
    """Per day: the participants expected (not excused without an entry), those on time."""
    days = union_all(*(select(literal(day, Date()).label("day")) for day in days_list)).subquery(
        "days"
    )
    bounds = (
        select(P.c.id, P.c.enrolled_on.label("s"), participant_last.label("e"))
        .where(*where)
        .subquery("bounds")
    )
    entry = D.alias("entry")
    excuse = X.alias("excuse")
    expected = and_(excuse.c.id.isnot(None), entry.c.id.is_(None))
    return (
        select(
            days.c.day,
            func.count().filter(~expected).label("expected"),
            func.count(entry.c.id).filter(entry.c.late.is_(False)).label("on_time"),
        )
        .select_from(
            days.join(bounds, and_(days.c.day >= bounds.c.s, days.c.day <= bounds.c.e))
            .outerjoin(
                entry,
                and_(entry.c.participant_id == bounds.c.id, entry.c.diary_date == days.c.day),
            )
            .outerjoin(
                excuse,
                and_(excuse.c.participant_id == bounds.c.id, excuse.c.day == days.c.day),
            )
        )
        .group_by(days.c.day)
    )


def _as_date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def reminder_funnel(
    site_ids: list[int], *, sent_from: datetime | None = None, sent_to: datetime | None = None
) -> list[FunnelRow]:
    """The funnel per kind of reminder (every kind listed, zeros included).

    `sent_from`/`sent_to` bound the sending instant (from included, to excluded).
    """
    delivered = exists().where(RD.c.reminder_id == R.c.id, RD.c.message_id.isnot(None))
    filled = exists().where(
        D.c.participant_id == R.c.participant_id,
        _within(D.c.received_at, R.c.sent_at, literal(int(FILLED_WITHIN.total_seconds()))),
    )
    was_sent = R.c.sent_at.isnot(None)
    where: list[ColumnElement[bool]] = [P.c.site_id.in_(site_ids), was_sent]
    if sent_from is not None:
        where.append(R.c.sent_at >= sent_from)
    if sent_to is not None:
        where.append(R.c.sent_at < sent_to)
    stmt = (
        select(
            R.c.kind,
            func.count().label("sent"),
            func.count().filter(delivered).label("delivered"),
            func.count().filter(R.c.opened_at.isnot(None)).label("opened"),
            func.count().filter(filled).label("filled"),
        )
        .select_from(R.join(P, P.c.id == R.c.participant_id))
        .where(*where)
        .group_by(R.c.kind)
    )
    counted = {row.kind: row for row in db.session.execute(stmt)}
    return [
        FunnelRow(
            kind,
            counted[kind].sent,
            counted[kind].delivered,
            counted[kind].opened,
            counted[kind].filled,
        )
        if kind in counted
        else FunnelRow(kind, 0, 0, 0, 0)
        for kind in REMINDER_KINDS
    ]
