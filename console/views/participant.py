"""One participant: header, calendar, symptoms, schedule, diary, adverse events, phones."""

from __future__ import annotations

from flask import render_template

from api.access import participant_for
from console.blueprint import bp
from console.security import current_principal


@bp.get("/participants/<int:participant_id>")
def participant(participant_id: int):  # type: ignore[no-untyped-def]
    """Everything about one participant, on one page."""
    p = participant_for(current_principal(), participant_id)
    return render_template("participant.html", participant=p)
