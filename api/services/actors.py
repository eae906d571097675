"""Who did it, in words a person reads: staff by e-mail, participants by study code.

Audit rows and diary versions store the actor as a pair (``("staff", 2)``); that pair is
the public contract, but a version history reads better as ``coordinator@site.org``.
The API's diary versions and the console's audit pages both name actors through here,
in one query per kind of actor for a whole page.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from api.audit import Actor
from api.extensions import db
from api.models import Participant, StaffUser

SYSTEM_LABEL = "system"


def actor_labels(actors: Iterable[Actor]) -> dict[Actor, str]:
    """A readable label for each (type, id): e-mail, study code, or "system"."""
    wanted = set(actors)
    staff_ids = {i for kind, i in wanted if kind == "staff" and i is not None}
    participant_ids = {i for kind, i in wanted if kind == "participant" and i is not None}
    labels: dict[Actor, str] = {}
    if staff_ids:
        rows = db.session.execute(
            select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(staff_ids))
        )
        labels.update({("staff", i): email for i, email in rows})
    if participant_ids:
        rows = db.session.execute(
            select(Participant.id, Participant.study_code).where(
                Participant.id.in_(participant_ids)
            )
        )
        labels.update({("participant", i): code for i, code in rows})
    for kind, i in wanted:
        if kind == "system":
            labels[(kind, i)] = SYSTEM_LABEL
    return labels
