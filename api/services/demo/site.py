"""One site's seven stories, written in the order they happened."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from api.extensions import db
from api.models import Participant
from api.services import devices, participants, schedule, sessions
from api.services.demo.diary_writer import DiaryWriter
from api.services.demo.review import SiteReview
from api.services.demo.roster import (
    SITE_ZONE,
    STORIES,
    TRAVEL_DAYS,
    TRAVEL_ZONES,
    WITHDRAWN_DAYS,
    Story,
    local,
)
from api.services.demo.stories import StoryEvents


class SiteBuilder(DiaryWriter, StoryEvents, SiteReview):
    """The seven stories of one site, written in the order they happened."""

    def build(self) -> None:
        today = self.now.astimezone(ZoneInfo(SITE_ZONE)).date()
        for story in sorted(STORIES, key=lambda s: -self._days_ago(s, today)):
            participant = self._enrol(story, today)
            self.cast[story.name] = participant
            self._live(story, participant)
            self.summary.participants += 1
        db.session.flush()
        self._serious_adverse_event()
        self._review_alerts()
        self.summary.highlights[self.site.code] = self._highlights()

    # --- enrolment, phone, schedule --------------------------------------------------

    def _days_ago(self, story: Story, today: date) -> int:
        if story.days_ago is None:  # the 3-month infusion (or visit) falls on tomorrow
            return (today - schedule.add_months(today + timedelta(days=1), -3)).days
        return story.days_ago + (self.index * 7) % 15 - 7

    def _enrol(self, story: Story, today: date) -> Participant:
        enrolled_on = today - timedelta(days=self._days_ago(story, today))
        self.clock.at(local(enrolled_on, time(9, 30)))
        enrolment = participants.enrol(
            self.actor,
            site=self.site,
            arm=story.arm,
            enrolled_on=enrolled_on,
            timezone=SITE_ZONE,
            locale=story.locale,
            diary_reminder_time=story.diary_time,
        )
        participant = enrolment.participant
        db.session.flush()
        self.clock.at(local(enrolled_on, time(10, 15)))
        sessions.activate_participant(enrolment.activation_code)
        platform = "ios" if self.rng.random() < 0.4 else "android"
        device, _ = devices.register_device(
            participant,
            f"demo-{participant.study_code.lower()}-{secrets.token_hex(8)}",
            platform,
            "1.4.2" if platform == "ios" else "1.4.1",
            story.locale,
        )
        self.summary.devices += story.name != "missed"
        if story.name == "missed":  # the app was uninstalled: FCM says UNREGISTERED
            lost = self.clock.at(self.now - timedelta(days=6))
            device.active, device.deactivated_at = False, lost
            device.deactivated_reason, device.updated_at = "UNREGISTERED", lost
        return participant

    def _live(self, story: Story, participant: Participant) -> None:
        """The participant's months in the trial: visits, diary, changes, the site's work."""
        if story.name == "abroad":
            self._travel(participant)
        zone_of = self._zones(story, participant)
        last_day = self._local_today(participant) - timedelta(days=1)
        if story.name == "withdrawn":
            last_day = self._local_today(participant) - timedelta(days=WITHDRAWN_DAYS + 1)
        self._visits(participant, last_day, reschedule=story.name != "withdrawn")
        days = self._diary_days(story, participant, last_day)
        self.summary.entries += self._write_diary(story, participant, days, zone_of)
        getattr(self, f"_story_{story.name}", lambda p: None)(participant)

    def _zones(self, story: Story, participant: Participant) -> Callable[[date], str]:
        """The zone of each diary day: the traveller's changes when they left."""
        if story.name != "abroad":
            return lambda day: SITE_ZONE
        left = self._local_today(participant) - timedelta(days=TRAVEL_DAYS)
        abroad = TRAVEL_ZONES[self.index % len(TRAVEL_ZONES)]
        return lambda day: abroad if day >= left else SITE_ZONE

    def _visits(self, participant: Participant, last_day: date, *, reschedule: bool) -> None:
        """Events whose window has passed took place (a few were missed); one moves."""
        today = self._local_today(participant)
        events = sorted(schedule.events_of(participant.id), key=lambda e: e.target_date)
        for event in events:
            if event.window_end >= today or event.target_date > last_day:
                continue
            actual = event.target_date + timedelta(self.rng.randint(-2, 3))
            actual = min(max(actual, participant.enrolled_on), today - timedelta(days=1))
            self.clock.at(local(actual, time(11, 0)))
            if self.rng.random() < 0.05:
                changes: dict[str, Any] = {"status": "missed"}
                reason: str | None = "Participant could not travel (flooded roads)"
            else:
                changes, reason = {"actual_date": actual}, None
            schedule.update_event(
                self.actor, participant, event, changes, reason, actual, self.clock.instant
            )
        later = [
            e for e in events if e.status == "scheduled" and e.target_date > today + timedelta(9)
        ]
        if reschedule and later and self.rng.random() < 0.5:
            self.clock.at(self.now - timedelta(days=3))
            schedule.update_event(
                self.actor,
                participant,
                later[0],
                {"target_date": later[0].target_date + timedelta(days=4)},
                "Public holiday week; agreed by phone",
                today - timedelta(days=3),
                self.clock.instant,
            )
