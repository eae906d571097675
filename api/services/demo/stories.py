"""Each story's own events: amendments, the hospital stay, the withdrawal, the trip."""

from __future__ import annotations

from datetime import time, timedelta

from api.models import Participant
from api.services import diary, excused_days, participants
from api.services.demo.base import SiteBase
from api.services.demo.roster import HOSPITAL_DAYS, TRAVEL_DAYS, TRAVEL_ZONES, WITHDRAWN_DAYS, local
from api.services.diary_amend import amend
from api.settings import study as current_study


class StoryEvents(SiteBase):
    """The events that make each participant the case their story is about."""

    def _story_steady(self, participant: Participant) -> None:
        """Two amendments by the coordinator and a day entered from the paper diary."""
        today = self._local_today(participant)
        for days_ago, changes, reason in (
            (75, {"leg_edema": 2}, "Participant called: swelling was 2, typed 0 by mistake"),
            (40, {"note": "Nosebleed in the morning"}, "Source data verification: paper diary"),
        ):
            entry = self._entry_on(participant, today - timedelta(days=days_ago))
            if entry is None:
                continue
            when = self.clock.at(local(entry.diary_date + timedelta(days=5), time(10, 20)))
            amend(entry, participant, changes, self.actor, when, current_study(), reason=reason)
        day = today - timedelta(days=30)
        when = self.clock.at(local(day + timedelta(days=4), time(11, 5)))
        diary.submit(
            participant,
            {
                "diary_date": day,
                **self._scores(1),
                "note": "From the paper diary",
                "recorded_at": local(day, time(21, 0)),
            },
            self.actor,
            when,
            current_study(),
            reason="Entered from the paper diary brought to the visit (phone battery dead)",
        )

    def _story_hospital(self, participant: Participant) -> None:
        today = self._local_today(participant)
        first, last = (today - timedelta(days=n) for n in HOSPITAL_DAYS)
        self.clock.at(local(last + timedelta(days=1), time(15, 0)))
        excused_days.excuse_days(
            self.actor, participant, first, last, "Hospital stay (paracentesis), no phone on ward"
        )

    def _story_withdrawn(self, participant: Participant) -> None:
        day = self._local_today(participant) - timedelta(days=WITHDRAWN_DAYS)
        self.clock.at(local(day, time(16, 0)))
        participants.update_participant(
            self.actor,
            participant,
            {"status": "withdrawn"},
            "Withdrew consent: moved to another city, declines follow-up",
        )

    def _story_urgent(self, participant: Participant) -> None:
        """A mis-tap corrected by the participant the same evening (no reason needed)."""
        today = self._local_today(participant)
        for days_ago in range(6, 20):
            entry = self._entry_on(participant, today - timedelta(days=days_ago))
            if entry is None or entry.debilitation == 0:
                continue
            when = entry.received_at + timedelta(minutes=4)
            if when < diary.day_end(entry.diary_date, entry.timezone):
                self.clock.at(when)
                changes = {"debilitation": entry.debilitation - 1}
                actor = ("participant", participant.id)
                amend(entry, participant, changes, actor, when, current_study())
                return

    def _travel(self, participant: Participant) -> None:
        """The phone set the new zone when the participant arrived (PATCH /me)."""
        left = self._local_today(participant) - timedelta(days=TRAVEL_DAYS)
        self.clock.at(local(left, time(8, 0)))
        zone = TRAVEL_ZONES[self.index % len(TRAVEL_ZONES)]
        participants.update_profile(
            ("participant", participant.id), participant, {"timezone": zone}
        )
