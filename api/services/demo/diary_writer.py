"""The daily entries of one participant, written in one batch as `diary.submit` would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from api.audit import Actor, record_audit, snapshot
from api.extensions import db
from api.models import DiaryEntry, Participant
from api.models.diary import utc_offset_minutes
from api.services import diary
from api.services.alerts import check_missed_diaries, symptom_alert_for_entry
from api.services.demo.base import SiteBase
from api.services.demo.roster import HOSPITAL_DAYS, STORY_DAYS, Story, local
from api.settings import study as current_study


class DiaryWriter(SiteBase):
    """Which days get an entry, what it says and when it arrived."""

    def _diary_days(self, story: Story, participant: Participant, last_day: date) -> list[date]:
        """The days that get an entry: a few missed (never three in a row, except for the
        participant whose story it is), none during the hospital stay."""
        today = self._local_today(participant)
        forced_gaps: set[date] = set()
        if story.name == "missed":
            for start in (100, 58):  # two past runs, each raised (and closed) an alert
                forced_gaps |= {today - timedelta(days=start - n) for n in range(4)}
            forced_gaps |= {today - timedelta(days=n) for n in range(1, 5)}  # still running
        if story.name == "hospital":
            first, last = HOSPITAL_DAYS
            forced_gaps |= {today - timedelta(days=n) for n in range(last, first + 1)}
        if story.name == "steady":
            forced_gaps.add(today - timedelta(days=30))  # entered later from the paper diary
        days, run = [], 0
        day = participant.enrolled_on
        while day <= last_day:
            chance = 0.0 if (today - day).days in STORY_DAYS else story.missed
            skip = day in forced_gaps or (run < 2 and self.rng.random() < chance)
            if skip and day not in forced_gaps and _near(day, forced_gaps):
                skip = False  # keep the designed runs exactly as long as designed
            run = run + 1 if skip else 0
            if not skip:
                days.append(day)
            day += timedelta(days=1)
        return days

    def _write_diary(
        self,
        story: Story,
        participant: Participant,
        days: list[date],
        zone_of: Callable[[date], str],
    ) -> int:
        """One batch: the entries, their version 1 and audit rows, then their alerts."""
        actor: Actor = ("participant", participant.id)
        today = self._local_today(participant)
        entries = self._entries(story, participant, days, zone_of)
        db.session.add_all(entries)
        db.session.flush()
        for entry in entries:
            self.clock.at(entry.received_at)
            # The same version 1 `diary.submit` writes (its own helper, not a copy).
            db.session.add(diary.new_version(entry, actor, entry.received_at, None))
            record_audit(
                actor,
                "diary_entry.created",
                "diary_entry",
                entry.id,
                participant_id=participant.id,
                after=snapshot(entry, diary.AUDITED_FIELDS),
            )
        for entry in entries:
            if entry.discomfort_grade >= 3:
                self.clock.at(entry.received_at)
                symptom_alert_for_entry(entry, participant, entry.received_at)
        if story.name == "missed":
            for start in (100, 58):  # the worker's check on the third missed morning
                check = self.clock.at(local(today - timedelta(days=start - 3), time(8, 0)))
                check_missed_diaries(check)
        return len(entries)

    def _entries(
        self,
        story: Story,
        participant: Participant,
        days: list[date],
        zone_of: Callable[[date], str],
    ) -> list[DiaryEntry]:
        """The day's entries as the phone sent them: scores drifting from day to day."""
        skew = current_study().clock_skew_minutes
        today = self._local_today(participant)
        level = self.rng.uniform(0.6, 1.6)
        entries = []
        for day in days:
            level = min(2.4, max(0.0, level + self.rng.uniform(-0.25, 0.25)))
            grade = self._grade(story, today, day, level)
            zone = zone_of(day)
            recorded, received = self._times(story, participant, day, zone)
            entries.append(
                DiaryEntry(
                    participant_id=participant.id,
                    diary_date=day,
                    client_entry_id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
                    **self._scores(grade),
                    note=_note(grade),
                    recorded_at=recorded,
                    recorded_offset_minutes=utc_offset_minutes(recorded),
                    timezone=zone,
                    received_at=received,
                    late=diary.is_late(day, zone, recorded, received, skew),
                    source="participant",
                    version=1,
                    updated_at=received,
                )
            )
        return entries

    def _grade(self, story: Story, today: date, day: date, level: float) -> int:
        """Discomfort mostly 0-2; grade 3 on a few days; the story's grade 3 and 4 days."""
        if story.name == "urgent" and day == today - timedelta(days=1):
            return 4
        if story.name == "grade3" and day == today - timedelta(days=2):
            return 3
        if day >= today - timedelta(days=4):
            return min(2, round(level))  # nothing else open: the designed cases stand out
        if self.rng.random() < 0.012:
            return 3
        return min(2, max(0, round(level + self.rng.uniform(-0.6, 0.6))))

    def _times(
        self, story: Story, participant: Participant, day: date, zone: str
    ) -> tuple[datetime, datetime]:
        """When the phone recorded the entry and the server received it.

        Most in the evening of the day; some the next morning (late); some recorded in
        the evening but sent the next morning from an offline phone (on time: the
        device's clock is believed)."""
        evening = local(day, time(19, 30), zone) + timedelta(minutes=self.rng.randint(0, 170))
        morning = local(day + timedelta(days=1), time(7, 40), zone) + timedelta(
            minutes=self.rng.randint(0, 200)
        )
        roll = self.rng.random()
        if roll < story.late and morning < self.now:
            return morning, morning + timedelta(seconds=40)
        if roll > 0.93 and morning < self.now:
            return evening, morning
        return evening, evening + timedelta(seconds=40)


def _near(day: date, gaps: set[date]) -> bool:
    """A day next to a designed gap: a random miss there would lengthen the run."""
    return any(day + timedelta(days=d) in gaps for d in (-2, -1, 1, 2))


def _note(grade: int) -> str | None:
    if grade >= 4:
        return "Very weak, belly very swollen, could not get up"
    if grade == 3:
        return "Legs swollen, stayed in bed most of the day"
    return None
