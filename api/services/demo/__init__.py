"""A believable trial for newcomers: `flask --app wsgi demo`.

Every site gets the same seven stories, so a coordinator of any site sees the cases the
review exists for: an urgent grade-4 day and a grade-3 day still open, a serious adverse
event near or past its 24-hour report, a participant abroad in another time zone, a
withdrawn one, a run of missed days (and a phone FCM no longer reaches), an excused
hospital stay, amendments by the coordinator with their reasons, an entry made on a
participant's behalf from the paper diary, and diaries from enrolment on (75-95 % on
time, one participant well below).

History is written as it would have happened: the app's clock (`CLOCK`, the same one
tests inject) is moved to each moment — enrolment, each diary evening, each visit, each
review — and the domain functions run there (enrolment, schedule changes, excuses,
amendments, adverse events, alerts and their acknowledgement, the missed-diary check),
so audit rows, versions and alerts carry believable times and every rule judges them at
that moment. Only the daily entries are written in one batch per participant (entry,
version 1 and audit row, exactly what `diary.submit` writes, lateness from
`diary.is_late`): one `submit` per entry would make the demo take minutes.
Demo phones are registered, so a worker pass (`notifications run --once`) has someone to
send to at any hour (the travellers' zones and early diary times cover the whole day).
"""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select

from api.clock import installed_clock
from api.extensions import db
from api.models import Alert, Participant, Site
from api.services.alerts import check_missed_diaries
from api.services.demo.roster import DemoClock, DemoSummary
from api.services.demo.site import SiteBuilder
from api.services.staff import add_staff

__all__ = ["DemoRefused", "DemoSummary", "build_demo"]


class DemoRefused(RuntimeError):
    """The database already holds a trial: the demo never mixes with real data."""


def build_demo(now: datetime, *, seed: int | None = None) -> DemoSummary:
    """Fill an empty database; refuses one that already holds participants."""
    if db.session.scalar(select(func.count()).select_from(Participant)):
        raise DemoRefused("The database already holds participants; the demo needs an empty one.")
    rng = random.Random(seed)
    summary = DemoSummary()
    sites = list(db.session.scalars(select(Site).order_by(Site.code)))
    clock = DemoClock(now)
    with installed_clock(clock):
        clock.at(now - timedelta(days=400))
        for role, email in (
            ("admin", "admin@demo.example.org"),
            ("monitor", "monitor@demo.example.org"),
        ):
            password = secrets.token_urlsafe(12)
            add_staff(email, role, [], password)
            summary.credentials.append((role, email, password))
        for index, site in enumerate(sites):
            clock.at(now - timedelta(days=400))
            email = f"coordinator.{site.code.lower()}@demo.example.org"
            password = secrets.token_urlsafe(12)
            coordinator = add_staff(email, "coordinator", [site.code], password)
            summary.credentials.append(("coordinator", email, password))
            db.session.flush()
            SiteBuilder(site, ("staff", coordinator.id), index, rng, clock, summary).build()
        clock.at(now)
        check_missed_diaries(now)
    db.session.flush()
    summary.alerts = dict(
        db.session.execute(select(Alert.kind, func.count()).group_by(Alert.kind)).all()
    )
    return summary
