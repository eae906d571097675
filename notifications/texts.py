"""Reminder texts from the message catalogues (`messages/<locale>.json`), zh-CN and en."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources
from typing import Any

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"


@cache
def catalogue(locale: str) -> dict[str, Any]:
    name = locale if locale in LOCALES else DEFAULT_LOCALE
    text = resources.files("notifications").joinpath(f"messages/{name}.json").read_text("utf-8")
    messages: dict[str, Any] = json.loads(text)
    return messages


def format_date(day: date, locale: str) -> str:
    messages = catalogue(locale)
    template: str = messages["date"]
    return template.format(
        weekday=messages["weekdays"][day.weekday()],
        day=day.day,
        month=messages["months"][day.month - 1],
    )


def _when(days: int, locale: str) -> str:
    words: dict[str, str] = catalogue(locale)["when"]
    if days <= 0:
        return words["today"]
    if days == 1:
        return words["tomorrow"]
    return words["days"].format(days=days)


def render(subject: str, target_date: date, today: date, locale: str) -> tuple[str, str]:
    """Title and body for `subject` (an event kind or ``diary``) in the participant's locale.

    "When" is counted from the participant's local today at sending time, so a reminder
    sent late after a retry still says the right thing.
    """
    entry: dict[str, str] = catalogue(locale)[subject]
    values = {
        "when": _when((target_date - today).days, locale),
        "date": format_date(target_date, locale),
    }
    return entry["title"].format(**values), entry["body"].format(**values)


_AT_HOSPITAL = frozenset({"infusion", "lab_visit"})


def _join(names: list[str], words: dict[str, Any]) -> str:
    """Names joined as "a", "a and b", "a, b and c" (a、b和c) in the locale's words."""
    if len(names) <= 1:
        return "".join(names)
    comma: str = words["comma"]
    conjunction: str = words["and"]
    return comma.join(names[:-1]) + conjunction + names[-1]


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def render_bundle(items: list[tuple[str, date]], today: date, locale: str) -> tuple[str, str]:
    """One title and body for reminders due in the same minute ("Infusion and lab visit in
    3 days"): a participant reads one message, not two pushes at once.

    `items` are (subject, target date) pairs; a single one renders as `render` does, so an
    unbundled reminder's text never changes. Subjects sharing a "when" share a title part
    and those sharing a date share a sentence; the diary keeps its own sentence.
    """
    if len(items) == 1:
        return render(items[0][0], items[0][1], today, locale)
    words = catalogue(locale)["bundle"]
    events = sorted({(day, subject) for subject, day in items if subject != "diary"})
    diary = sorted({day for subject, day in items if subject == "diary"})
    titles: list[str] = []
    sentences: list[str] = []
    for day in sorted({day for day, _ in events}):
        names = [words["names"][s] for d, s in events if d == day]
        subjects = _join(names, words)
        titles.append(
            words["title"].format(subjects=subjects, when=_when((day - today).days, locale))
        )
        template = words["body_one"] if len(names) == 1 else words["body_many"]
        sentences.append(template.format(subjects=subjects, date=format_date(day, locale)))
    if any(subject in _AT_HOSPITAL for _, subject in events):
        sentences.append(words["hospital"])
    for day in diary:
        titles.append(words["names"]["diary"])
        sentences.append(render("diary", day, today, locale)[1])
    title = words["parts"].join(titles)
    return _capitalised(title), words["sentences"].join(_capitalised(s) for s in sentences)
