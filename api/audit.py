"""Write the audit trail: in the caller's transaction, so it lands with the change or not at all."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from api.clock import utcnow
from api.extensions import db
from api.models import AuditEvent

Actor = tuple[str, int | None]
SYSTEM: Actor = ("system", None)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def snapshot(obj: Any, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The named attributes of `obj`, ready to store as JSON."""
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def record_audit(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: int,
    *,
    participant_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one audit row to the session; the caller commits it with the change."""
    actor_type, actor_id = actor
    event = AuditEvent(
        at=utcnow(),
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        participant_id=participant_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        reason=reason,
    )
    db.session.add(event)
    return event
