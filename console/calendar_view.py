"""The diary calendar as month grids: every expected day with its status and scores.

Built from `compliance.calendar` (the same day statuses the API's calendar answers), so
the heat map and `GET /participants/{id}/compliance` can never disagree.
"""

from __future__ import annotations

import calendar as calendar_module
from dataclasses import dataclass
from datetime import date
from typing import Any

from console.i18n import translate

SCORE_KEYS = (
    ("abdominal_distension", "score.ad"),
    ("decreased_appetite", "score.da"),
    ("debilitation", "score.db"),
    ("leg_edema", "score.le"),
    ("discomfort_grade", "score.grade"),
)


@dataclass
class Day:
    day: date | None  # None: a blank cell before the 1st
    status: str = "blank"
    entry_id: int | None = None
    text: str = ""


@dataclass
class Month:
    year: int
    month: int
    cells: list[Day]


def scores_text(entry: Any) -> str:
    return " · ".join(f"{translate(key)} {getattr(entry, name)}" for name, key in SCORE_KEYS)


def months(cal: dict[str, Any], entries: list[Any], *, active: bool) -> list[Month]:
    """Month grids (Monday first) from the first to the last day of the calendar; days
    after it (today on) are `not_yet_due` while the participant is active."""
    days = {item["date"]: item for item in cal["days"]}
    if not days:
        return []
    by_date = {entry.diary_date: entry for entry in entries}
    first, last = min(days), max(days)
    later = "not_yet_due" if active else "not_expected"
    out: list[Month] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(_month(year, month, days, by_date, last, later))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _month(
    year: int,
    month: int,
    days: dict[date, Any],
    by_date: dict[date, Any],
    last: date,
    later: str,
) -> Month:
    lead, length = calendar_module.monthrange(year, month)
    cells = [Day(None) for _ in range(lead)]
    for number in range(1, length + 1):
        day = date(year, month, number)
        item = days.get(day)
        status = item["status"] if item else (later if day > last else "not_expected")
        entry = by_date.get(day)
        words = [day.isoformat(), translate(f"day.{status}")]
        if entry is not None:
            words.append(scores_text(entry))
        elif item and item.get("excused_reason"):
            words.append(item["excused_reason"])
        cells.append(Day(day, status, entry.id if entry else None, " · ".join(words)))
    return Month(year, month, cells)
