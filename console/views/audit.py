"""Audit: a participant's trail as a person reads it, and whether its hash chain holds.

Who (the staff member's e-mail, or the participant, or the system), when (in the site's
zone), what (each field from its old value to its new one) and why. The chain is the
participant's own (`participant:<id>` in api/chain.py), walked end to end on each view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import render_template, request
from sqlalchemy import func, select

from api.access import participant_for
from api.chain import verify_chain
from api.extensions import db
from api.models import AuditEvent, ChainHead, Site, StaffUser
from console.blueprint import bp
from console.i18n import translate
from console.security import current_principal

PAGE_SIZE = 100


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[Change]:
    """The fields whose value differs, in a stable order; a creation lists what was set."""
    before, after = before or {}, after or {}
    names = sorted(set(before) | set(after))
    return [
        Change(name, before.get(name), after.get(name))
        for name in names
        if before.get(name) != after.get(name)
    ]


def _who(event: AuditEvent, emails: dict[int, str], study_code: str) -> str:
    if event.actor_type == "staff":
        return emails.get(event.actor_id or 0, translate("audit.staff_unknown", id=event.actor_id))
    if event.actor_type == "participant":
        return translate("audit.the_participant", code=study_code)
    return translate("audit.system")


def chain_status(participant_id: int) -> dict[str, Any]:
    """Walk the participant's chain: `ok`, how many rows, and the first break if any."""
    key = f"participant:{participant_id}"
    head = db.session.get(ChainHead, key)
    if head is None:
        return {"ok": True, "rows": 0, "problem": None}
    result = verify_chain(db.session.connection(), key, head.seq, head.head_hash)
    broken = result.broken
    return {
        "ok": broken is None,
        "rows": result.rows,
        "problem": broken.describe() if broken else None,
    }


@bp.get("/participants/<int:participant_id>/audit")
def audit(participant_id: int):  # type: ignore[no-untyped-def]
    """The trail, newest first, paginated; 404 for another site's participant."""
    participant = participant_for(current_principal(), participant_id)
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    where = AuditEvent.participant_id == participant.id
    total = db.session.scalar(select(func.count()).where(where)) or 0
    events = list(
        db.session.scalars(
            select(AuditEvent)
            .where(where)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    staff_ids = {e.actor_id for e in events if e.actor_type == "staff" and e.actor_id}
    emails: dict[int, str] = {}
    if staff_ids:
        stmt = select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))
        emails = {row[0]: row[1] for row in db.session.execute(stmt)}
    rows = [
        {
            "event": e,
            "who": _who(e, emails, participant.study_code),
            "changes": changes(e.before, e.after),
            "created": e.before is None,
        }
        for e in events
    ]
    site = db.session.get(Site, participant.site_id)
    return render_template(
        "audit.html",
        participant=participant,
        site=site,
        rows=rows,
        chain=chain_status(participant.id),
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
    )
