"""The diary calendar as month grids: every expected day with its status and scores.

Built from `compliance.calendar` (the same day statuses the API's calendar answers), so
the heat map and `GET /participants/{id}/compliance` can never disagree.
"""

from __future__ import annotations

import calendar as calendar_module
from dataclasses import dataclass
from datetime import date
from typing import Any

from markupsafe import Markup, escape

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

    def cells_html(self) -> Markup:
        """The month's cells as markup. Built here rather than in a template loop: three
        years are over a thousand cells, and the loop cost more than the rest of the page."""
        return Markup("\n").join(_cell_html(cell) for cell in self.cells)


def _cell_html(cell: Day) -> Markup:
    """A blank, a day with an entry (a link to it) or a day without; the text is both the
    tooltip and, for screen readers, part of the cell."""
    if cell.day is None:
        return Markup('<span class="day day-blank" aria-hidden="true"></span>')
    text, status = escape(cell.text), escape(cell.status)
    inner = f'{cell.day.day}<span class="visually-hidden"> {text}</span>'
    if cell.entry_id:
        return Markup(
            f'<a class="day day-{status}" href="#entry-{int(cell.entry_id)}" title="{text}">'
            f"{inner}</a>"
        )
    return Markup(f'<span class="day day-{status}" title="{text}">{inner}</span>')


STATUSES = ("on_time", "late", "missing", "excused", "not_yet_due", "not_expected")


def scores_text(entry: Any, labels: dict[str, str] | None = None) -> str:
    """`AD 1 · DA 0 · …`; `labels` (score name to its short label) saves a look-up a day."""
    labels = labels or score_labels()
    return " · ".join(f"{labels[name]} {getattr(entry, name)}" for name, _key in SCORE_KEYS)


def score_labels() -> dict[str, str]:
    return {name: translate(key) for name, key in SCORE_KEYS}


def months(cal: dict[str, Any], entries: list[Any], *, active: bool) -> list[Month]:
    """Month grids (Monday first) from the first to the last day of the calendar; days
    after it (today on) are `not_yet_due` while the participant is active."""
    days = {item["date"]: item for item in cal["days"]}
    if not days:
        return []
    by_date = {entry.diary_date: entry for entry in entries}
    first, last = min(days), max(days)
    later = "not_yet_due" if active else "not_expected"
    # Three years are over a thousand cells: each label is translated once, not per day.
    words = _Words({status: translate(f"day.{status}") for status in STATUSES}, score_labels())
    out: list[Month] = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        out.append(_month(year, month, days, by_date, last, later, words))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


@dataclass(frozen=True)
class _Words:
    """The page's labels, translated once per calendar."""

    statuses: dict[str, str]
    scores: dict[str, str]


def _month(
    year: int,
    month: int,
    days: dict[date, Any],
    by_date: dict[date, Any],
    last: date,
    later: str,
    labels: _Words,
) -> Month:
    lead, length = calendar_module.monthrange(year, month)
    cells = [Day(None) for _ in range(lead)]
    for number in range(1, length + 1):
        day = date(year, month, number)
        item = days.get(day)
        status = item["status"] if item else (later if day > last else "not_expected")
        entry = by_date.get(day)
        words = [day.isoformat(), labels.statuses.get(status) or translate(f"day.{status}")]
        if entry is not None:
            words.append(scores_text(entry, labels.scores))
        elif item and item.get("excused_reason"):
            words.append(item["excused_reason"])
        cells.append(Day(day, status, entry.id if entry else None, " · ".join(words)))
    return Month(year, month, cells)
