"""Today: the worklist of what needs doing at the caller's sites."""

from __future__ import annotations

from flask import render_template

from api.access import site_ids_in_scope
from api.clock import utcnow
from api.services import worklist
from console.blueprint import bp
from console.security import current_principal


@bp.get("/")
def today():  # type: ignore[no-untyped-def]
    """Open alerts, serious events on the clock, low compliance, due visits, lost phones."""
    principal = current_principal()
    now = utcnow()
    items = worklist.worklist(site_ids_in_scope(principal, None), now)
    return render_template("today.html", now=now, work=items)
