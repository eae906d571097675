"""The participants table of the console: who, their compliance and their next event.

One compliance statement for every participant of the filter (the same SQL as
`GET /compliance`), sorted and paged here, then the next events of the shown page only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select

from api.extensions import db
from api.models import ScheduleEvent
from api.services.compliance import P, ParticipantCompliance, participant_compliance

SORT_KEYS = {
    "study_code": lambda row: row.study_code,
    "site": lambda row: (row.site, row.study_code),
    "arm": lambda row: (row.arm, row.study_code),
    "enrolled_on": lambda row: (row.enrolled_on, row.study_code),
    "status": lambda row: (row.status, row.study_code),
    "rate": lambda row: -1 if row.rate_last_14_days is None else row.rate_last_14_days,
    "missed_run": lambda row: (row.current_missed_run, row.study_code),
    "last_entry": lambda row: (row.last_entry_date or date.min, row.study_code),
}


@dataclass
class RosterRow(ParticipantCompliance):
    """A participant's compliance with their next event: one row of the table."""

    next_event: ScheduleEvent | None

    @classmethod
    def of(cls, row: ParticipantCompliance, next_event: ScheduleEvent | None) -> RosterRow:
        return cls(**{f.name: getattr(row, f.name) for f in fields(row)}, next_event=next_event)


@dataclass
class RosterPage:
    rows: list[RosterRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def roster(
    site_ids: list[int],
    now: datetime,
    *,
    arm: str | None = None,
    status: str | None = None,
    sort: str = "study_code",
    descending: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> RosterPage:
    """One page of the participants of `site_ids`, filtered and sorted."""
    where: list[Any] = [P.c.site_id.in_(site_ids)]
    if arm:
        where.append(P.c.arm == arm)
    if status:
        where.append(P.c.status == status)
    rows = participant_compliance(where, now)
    rows.sort(key=SORT_KEYS.get(sort, SORT_KEYS["study_code"]), reverse=descending)
    start = (page - 1) * page_size
    shown = rows[start : start + page_size]
    nexts = next_events([row.participant_id for row in shown], now)
    return RosterPage(
        [RosterRow.of(row, nexts.get(row.participant_id)) for row in shown],
        len(rows),
        page,
        page_size,
    )


def next_events(participant_ids: list[int], now: datetime) -> dict[int, ScheduleEvent]:
    """Each participant's first scheduled event whose window has not closed."""
    if not participant_ids:
        return {}
    today = now.date()
    first = (
        select(
            ScheduleEvent.id,
            func.row_number()
            .over(
                partition_by=ScheduleEvent.participant_id,
                order_by=(ScheduleEvent.target_date, ScheduleEvent.id),
            )
            .label("n"),
        )
        .where(
            ScheduleEvent.participant_id.in_(participant_ids),
            ScheduleEvent.status == "scheduled",
            ScheduleEvent.window_end >= today,
        )
        .subquery()
    )
    stmt = select(ScheduleEvent).join(first, first.c.id == ScheduleEvent.id).where(first.c.n == 1)
    return {event.participant_id: event for event in db.session.scalars(stmt)}
