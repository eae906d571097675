"""What every part of one site's history shares: the site, its clock, its dice."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from api.audit import Actor
from api.extensions import db
from api.models import DiaryEntry, Participant, Site
from api.services import participants
from api.services.demo.roster import DemoClock, DemoSummary


@dataclass
class SiteBase:
    """One site's state while its history is written; the parts below add the chapters."""

    site: Site
    actor: Actor
    index: int
    rng: random.Random
    clock: DemoClock
    summary: DemoSummary
    cast: dict[str, Participant] = field(default_factory=dict)

    @property
    def now(self) -> datetime:
        return self.clock.now

    def _local_today(self, participant: Participant) -> date:
        return participants.local_today(participant, self.now)

    def _entry_on(self, participant: Participant, day: date) -> DiaryEntry | None:
        return db.session.scalar(
            select(DiaryEntry).where(
                DiaryEntry.participant_id == participant.id, DiaryEntry.diary_date == day
            )
        )

    def _scores(self, grade: int) -> dict[str, int]:
        def near(base: int) -> int:
            return min(4, max(0, base + self.rng.choice((-1, 0, 0, 1))))

        return {
            "abdominal_distension": near(grade),
            "decreased_appetite": near(max(0, grade - 1)),
            "debilitation": near(grade),
            "leg_edema": near(max(0, grade - 1)),
            "discomfort_grade": grade,
        }
