"""Two languages, zh-CN and en, from plain JSON catalogues (no compile step).

Every `translations/*.json` file maps a key to its texts, `{"key": {"en": …, "zh-CN": …}}`;
the files are merged, so each page's module may keep its own. The language is the staff
member's choice (`staff_users.locale`), else the one chosen on the sign-in page, else the
browser's `Accept-Language`, else zh-CN. Times are shown in the site's zone, with the zone.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, g, request, session
from markupsafe import Markup

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for path in sorted(TRANSLATIONS.glob("*.json")):
        merged.update(json.loads(path.read_text(encoding="utf-8")))
    return merged


def browser_locale(header: str | None) -> str | None:
    """The first of our languages the browser asks for, by its q-values."""
    if not header:
        return None
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    accepted = parse_accept_header(header, LanguageAccept)
    for value, _quality in accepted:
        tag = value.lower()
        if tag.startswith("zh"):
            return "zh-CN"
        if tag.startswith("en"):
            return "en"
    return None


def choose_locale(
    account_choice: str | None, session_choice: str | None, header: str | None
) -> str:
    for choice in (account_choice, session_choice):
        if choice in LOCALES:
            return choice
    return browser_locale(header) or DEFAULT_LOCALE


def current_locale() -> str:
    locale = g.get("console_locale")
    if locale is None:
        staff = g.get("console_staff")
        locale = choose_locale(
            staff.locale if staff is not None else None,
            session.get("locale"),
            request.headers.get("Accept-Language"),
        )
        g.console_locale = locale
    return locale


def translate(key: str, /, default: str | None = None, **values: Any) -> str:
    """The text of `key` in the current language (English, then the key, as fallbacks)."""
    texts = catalogue().get(key)
    if texts is None:
        text = default if default is not None else key
    else:
        text = texts.get(current_locale()) or texts.get("en") or key
    return text.format(**values) if values else text


def translate_in(locale: str, key: str, /, **values: Any) -> str:
    """The text of `key` in another language than the page's (a participant's slip)."""
    texts = catalogue().get(key) or {}
    text = texts.get(locale) or texts.get("en") or key
    return text.format(**values) if values else text


def error_text(code: str | None, fallback: str | None = None) -> str:
    """A domain error code as a sentence in the reader's language."""
    return translate(f"error.{code}", default=fallback or translate("error.generic"))


def format_datetime(value: datetime | None, zone: str) -> str:
    """`2026-12-02 22:30 CST (Asia/Shanghai)`: always with the zone it is shown in."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def local_input(value: datetime, zone: str) -> str:
    """An instant as a `datetime-local` input value in the site's zone."""
    return value.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def format_date(value: date | None) -> str:
    if value is None:
        return "—"
    weekday = translate(f"weekday.{value.weekday()}")
    return f"{value:%Y-%m-%d} ({weekday})"


def format_duration(seconds: float) -> str:
    """A compact age or countdown: `3 d 4 h`, `5 h 10 min`, `12 min`."""
    minutes = int(abs(seconds) // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return translate("duration.days_hours", d=days, h=hours)
    if hours:
        return translate("duration.hours_minutes", h=hours, m=mins)
    return translate("duration.minutes", m=mins)


def format_rate(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def label(group: str, value: Any) -> str:
    """A stored code (status, arm, kind) as a word: `label('status', 'active')`."""
    if value is None:
        return "—"
    return translate(f"{group}.{value}", default=str(value))


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(
        _=translate,
        _in=translate_in,
        label=label,
        error_text=error_text,
        current_locale=current_locale,
        format_datetime=format_datetime,
        format_date=format_date,
        local_input=local_input,
        format_duration=format_duration,
        format_rate=format_rate,
        LOCALES=LOCALES,
        Markup=Markup,
    )
