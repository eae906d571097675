"""Reminder texts from the message catalogues (`messages/<locale>.json`), zh-CN and en."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from importlib import resources

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"


@cache
def catalogue(locale: str) -> dict:
    name = locale if locale in LOCALES else DEFAULT_LOCALE
    text = resources.files("notifications").joinpath(f"messages/{name}.json").read_text("utf-8")
    return json.loads(text)


def format_date(day: date, locale: str) -> str:
    messages = catalogue(locale)
    return messages["date"].format(
        weekday=messages["weekdays"][day.weekday()],
        day=day.day,
        month=messages["months"][day.month - 1],
    )


def _when(days: int, locale: str) -> str:
    words = catalogue(locale)["when"]
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
    entry = catalogue(locale)[subject]
    values = {
        "when": _when((target_date - today).days, locale),
        "date": format_date(target_date, locale),
    }
    return entry["title"].format(**values), entry["body"].format(**values)
