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
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from api.audit import Actor, record_audit, snapshot
from api.clock import installed_clock
from api.extensions import db
from api.models import Alert, DiaryEntry, Participant, Site
from api.models.diary import utc_offset_minutes
from api.services import (
    adverse_events,
    devices,
    diary,
    excused_days,
    participants,
    schedule,
    sessions,
)
from api.services.alerts import acknowledge, check_missed_diaries, symptom_alert_for_entry
from api.services.diary_amend import amend
from api.services.staff import add_staff
from api.settings import study as current_study

SITE_ZONE = "Asia/Shanghai"
# One traveller per site, each in another zone (index = site order).
TRAVEL_ZONES = (
    "Europe/London",
    "America/Vancouver",
    "Australia/Sydney",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Dubai",
)
TRAVEL_DAYS = 12  # the traveller left this many days ago
HOSPITAL_DAYS = (26, 20)  # the excused stay: from 26 to 20 days ago
WITHDRAWN_DAYS = 45
# Days (before today) whose entries the stories need: grade 4 and 3, the amended ones.
STORY_DAYS = frozenset({1, 2, 6, 40, 75})
SAE_TERMS = (
    ("Hepatocellular carcinoma", ["tumour"]),
    ("Oesophageal variceal bleeding", ["life_threatening"]),
    ("Hepatic encephalopathy, grade 3", ["life_threatening"]),
)


class DemoRefused(RuntimeError):
    """The database already holds a trial: the demo never mixes with real data."""


@dataclass(frozen=True)
class Story:
    """One participant's part: how long ago they enrolled and how they keep the diary."""

    name: str
    arm: str
    days_ago: int | None  # None: three months less a day (an infusion or visit tomorrow)
    missed: float  # chance a day has no entry
    late: float  # chance an entry arrives after its day ended
    locale: str
    diary_time: str | None = None  # None: the study's default (20:00)


STORIES = (
    Story("steady", "msc", 305, 0.03, 0.04, "zh-CN", "08:00"),
    Story("hospital", "control", 245, 0.06, 0.08, "zh-CN"),
    Story("withdrawn", "control", 205, 0.09, 0.10, "zh-CN"),
    Story("urgent", "msc", 182, 0.05, 0.06, "en"),
    Story("missed", "control", 150, 0.16, 0.14, "zh-CN"),
    Story("abroad", "msc", 124, 0.05, 0.10, "en", "08:00"),
    Story("grade3", "msc", None, 0.04, 0.05, "zh-CN", "19:30"),
)
ACK_NOTES = (
    "Called the participant: tired after a poor night, no new symptom.",
    "Phoned: swelling as at the last visit; advised to keep the legs raised.",
    "Discussed with the investigator: known ascites, diuretics unchanged.",
    "Participant reached by phone; feels better today.",
)


@dataclass
class DemoSummary:
    credentials: list[tuple[str, str, str]] = field(default_factory=list)
    highlights: dict[str, list[str]] = field(default_factory=dict)
    participants: int = 0
    entries: int = 0
    devices: int = 0
    alerts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = ["Demo trial created.", "", "Staff accounts (role, e-mail, password):"]
        lines += [
            f"  {role:<11} {email:<36} {password}" for role, email, password in self.credentials
        ]
        lines += [
            "",
            f"{self.participants} participants, {self.entries} diary entries, "
            f"{self.devices} phones reachable, alerts: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(self.alerts.items())),
            "",
            "At every site (e.g. BJ302):",
        ]
        lines += [f"  {line}" for line in self.highlights.get("BJ302", [])]
        lines += [
            "",
            "Sign in to the console as a coordinator at /console/login (e.g.",
            "http://127.0.0.1:5000/console/login), or through the API",
            "(POST /api/v1/auth/staff/login), then try",
            "GET /api/v1/alerts?status=open, GET /api/v1/compliance and",
            "GET /api/v1/participants/{id}/diary-entries. Run one reminder pass with",
            "`flask --app wsgi notifications run --once` (logged only without FCM credentials).",
        ]
        return "\n".join(lines)


class DemoClock:
    """The app's clock while the demo writes history: set to each moment in turn."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.instant = now

    def __call__(self) -> datetime:
        return self.instant

    def at(self, instant: datetime) -> datetime:
        self.instant = min(instant.astimezone(UTC), self.now)
        return self.instant


def local(day: date, at: time, zone: str = SITE_ZONE) -> datetime:
    return datetime.combine(day, at, tzinfo=ZoneInfo(zone))


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


@dataclass
class SiteBuilder:
    """The seven stories of one site, written in the order they happened."""

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

    def _local_today(self, participant: Participant) -> date:
        return participants.local_today(participant, self.now)

    def _zones(self, story: Story, participant: Participant):  # type: ignore[no-untyped-def]
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
                changes: dict = {"status": "missed"}
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

    # --- the diary -------------------------------------------------------------------

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

    def _write_diary(self, story, participant, days, zone_of) -> int:  # type: ignore[no-untyped-def]
        """One batch: the entries, their version 1 and audit rows, then their alerts."""
        skew = current_study().clock_skew_minutes
        actor: Actor = ("participant", participant.id)
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

    def _times(self, story: Story, participant: Participant, day: date, zone: str):  # type: ignore[no-untyped-def]
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

    # --- each story's own events -------------------------------------------------------

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

    def _entry_on(self, participant: Participant, day: date) -> DiaryEntry | None:
        return db.session.scalar(
            select(DiaryEntry).where(
                DiaryEntry.participant_id == participant.id, DiaryEntry.diary_date == day
            )
        )

    # --- the site's review --------------------------------------------------------------

    def _serious_adverse_event(self) -> None:
        """Every site has one serious event whose 24 h report is due: odd sites overdue."""
        participant = self.cast["steady"]
        term, criteria = SAE_TERMS[self.index % len(SAE_TERMS)]
        hours = 30 if self.index % 2 else 19
        aware = self.now - timedelta(hours=hours)
        self.clock.at(aware + timedelta(minutes=40))
        adverse_events.record(
            self.actor,
            participant,
            {
                "term": term,
                "onset_date": self._local_today(participant) - timedelta(days=2),
                "grade": 4,
                "seriousness": criteria,
                "relation_to_infusion": "possible",
                "outcome": "not_recovered",
                "awareness_at": aware,
                "description": "Admitted through the emergency department.",
            },
        )

    def _review_alerts(self) -> None:
        """The site has worked through its older alerts: one became an adverse event."""
        recent = self.now - timedelta(days=4)
        alerts = db.session.scalars(
            select(Alert)
            .where(
                Alert.site_id == self.site.id,
                Alert.status == "open",
                Alert.kind.in_(("symptom", "symptom_urgent", "missed_diary")),
                Alert.created_at < recent,
            )
            .order_by(Alert.created_at)
        ).all()
        recorded_one = False
        for number, alert in enumerate(alerts):
            when = self.clock.at(alert.created_at + timedelta(hours=self.rng.randint(2, 20)))
            if alert.kind == "missed_diary":
                acknowledge(
                    self.actor,
                    alert,
                    note="Called: the phone was broken; paper diary meanwhile.",
                    decision=None,
                    adverse_event_id=None,
                    now=when,
                )
                continue
            ae_id = None
            if not recorded_one:
                ae_id = self._adverse_event_for(alert)
                recorded_one = True
            acknowledge(
                self.actor,
                alert,
                note=ACK_NOTES[number % len(ACK_NOTES)]
                if ae_id is None
                else "Ascites worse: recorded as an adverse event, diuretics adjusted.",
                decision="adverse_event_recorded" if ae_id else "not_adverse_event",
                adverse_event_id=ae_id,
                now=when,
            )

    def _adverse_event_for(self, alert: Alert) -> int:
        participant = db.session.get(Participant, alert.participant_id)
        assert participant is not None
        ae = adverse_events.record(
            self.actor,
            participant,
            {
                "term": "Ascites, worsening",
                "onset_date": date.fromisoformat(alert.details["diary_date"]),
                "grade": 2,
                "seriousness": [],
                "relation_to_infusion": "unlikely",
                "outcome": "recovered",
                "diary_entry_id": alert.diary_entry_id,
            },
        )
        return ae.id

    def _highlights(self) -> list[str]:
        c = self.cast
        zone = TRAVEL_ZONES[self.index % len(TRAVEL_ZONES)]
        due = "overdue" if self.index % 2 else "due in 5 h"
        return [
            f"{c['steady'].study_code} (id {c['steady'].id}): serious adverse event, 24 h report "
            f"{due}; amendments and a paper-diary entry by the coordinator",
            f"{c['urgent'].study_code} (id {c['urgent'].id}): grade 4 yesterday (urgent alert)",
            f"{c['grade3'].study_code} (id {c['grade3'].id}): grade 3 two days ago; visit tomorrow",
            f"{c['missed'].study_code} (id {c['missed'].id}): 4 days missed, phone unreachable",
            f"{c['abroad'].study_code} (id {c['abroad'].id}): abroad ({zone})",
            f"{c['hospital'].study_code} (id {c['hospital'].id}): excused hospital stay",
            f"{c['withdrawn'].study_code} (id {c['withdrawn'].id}): withdrawn "
            f"{WITHDRAWN_DAYS} days ago",
        ]



def _near(day: date, gaps: set[date]) -> bool:
    """A day next to a designed gap: a random miss there would lengthen the run."""
    return any(day + timedelta(days=d) in gaps for d in (-2, -1, 1, 2))


def _note(grade: int) -> str | None:
    if grade >= 4:
        return "Very weak, belly very swollen, could not get up"
    if grade == 3:
        return "Legs swollen, stayed in bed most of the day"
    return None
