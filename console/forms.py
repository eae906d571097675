"""HTML forms through the API's own schemas: the same fields, limits and messages.

A form sends strings; the schemas are strict about types (a score must be an integer,
an instant must carry its offset), so the few conversions a browser cannot do happen
here: empty fields are left out, scores become integers, a `datetime-local` value is
read in the site's zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, request
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from api.errors import DomainError
from api.extensions import db
from console.i18n import error_text, translate


def form_values(
    names: tuple[str, ...],
    *,
    ints: tuple[str, ...] = (),
    instants: tuple[str, ...] = (),
    lists: tuple[str, ...] = (),
    zone: str = "Asia/Shanghai",
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in names:
        raw = request.form.get(name, "").strip()
        if raw == "":
            continue
        if name in ints:
            values[name] = int(raw) if raw.lstrip("-").isdigit() else raw
        elif name in instants:
            values[name] = local_instant(raw, zone)
        else:
            values[name] = raw
    for name in lists:
        if name in request.form or f"{name}__present" in request.form:
            values[name] = [v for v in request.form.getlist(name) if v]
    return values


def local_instant(raw: str, zone: str) -> str:
    """`2026-12-02T10:30` typed at the site → ISO 8601 with the site's offset."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw  # the schema names the field
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.isoformat()


def load(schema: type[Schema], values: dict[str, Any]) -> dict[str, Any]:
    return schema().load(values)


def fields_message(messages: Any) -> str:
    """Validation messages as one readable sentence, with the fields' own labels."""
    if not isinstance(messages, dict):
        return translate("error.validation_failed")
    parts = []
    for name, problems in messages.items():
        texts = problems if isinstance(problems, list) else [str(problems)]
        label = translate(f"field.{name}", default=name)
        said = "; ".join(translate(f"mm.{text}", default=str(text)) for text in texts)
        parts.append(f"{label}: {said}")
    return translate("error.validation_failed") + " " + " · ".join(parts)


def write_then_redirect(target: str, action: Callable[[], str | None]) -> Response:
    """Run a write, commit, say what happened, and go back (POST → redirect → GET).

    Refusals by the rules (409, 412, 422) are shown as translated sentences on the page
    the form came from; nothing is saved. 403 and 404 stay error pages.
    """
    try:
        message = action()
        db.session.commit()
        flash(message or translate("form.saved"), "success")
    except ValidationError as exc:
        db.session.rollback()
        flash(fields_message(exc.messages), "error")
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code in (401, 403, 404):
            raise
        text = error_text(exc.error, exc.message)
        if exc.errors and exc.error in ("validation_failed", None):
            text = fields_message(exc.errors)
        flash(text, "error")
    return redirect(target, code=303)
