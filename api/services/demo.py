"""A small believable trial for newcomers: `flask --app wsgi demo`.

Everything goes through the domain functions (enrolment, diary submission, schedule
changes, excuses, adverse events, the missed-diary check), so the demo data keeps every
rule the real data keeps: versions, audit rows, alerts, lateness.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from api.audit import Actor
from api.extensions import db
from api.models import Alert, Participant, Site
from api.services import adverse_events, diary, excused_days, participants, schedule
from api.services.alerts import acknowledge, check_missed_diaries
from api.services.staff import add_staff

DIARY_DAYS = 60
# (arm, days since enrolment, time zone): different points of the schedule.
PARTICIPANT_PLANS = (
    ("msc", 400, "Asia/Shanghai"),
    ("control", 200, "Asia/Shanghai"),
    ("msc", 95, "Asia/Shanghai"),
    ("control", 24, "Asia/Shanghai"),
)
TRAVELLER_ZONE = "Europe/London"


class DemoRefused(RuntimeError):
    """The database already holds a trial: the demo never mixes with real data."""


@dataclass
class DemoSummary:
    credentials: list[tuple[str, str, str]] = field(default_factory=list)
    participants: int = 0
    entries: int = 0
    alerts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        lines = ["Demo trial created.", "", "Staff accounts (role, e-mail, password):"]
        lines += [
            f"  {role:<11} {email:<36} {password}" for role, email, password in self.credentials
        ]
        lines += [
            "",
            f"{self.participants} participants, {self.entries} diary entries, alerts: "
            + ", ".join(f"{kind} {n}" for kind, n in sorted(self.alerts.items())),
            "",
            "Sign in as a coordinator (POST /api/v1/auth/staff/login), then try",
            "GET /api/v1/compliance, GET /api/v1/alerts?status=open,",
            "GET /api/v1/participants?site=BJ302 and GET /api/v1/participants/{id}/schedule.",
        ]
        return "\n".join(lines)


def build_demo(now: datetime, *, seed: int | None = None) -> DemoSummary:
    """Fill an empty database; refuses one that already holds participants."""
    if db.session.scalar(select(func.count()).select_from(Participant)):
        raise DemoRefused("The database already holds participants; the demo needs an empty one.")
    rng = random.Random(seed)
    summary = DemoSummary()
    sites = list(db.session.scalars(select(Site).order_by(Site.code)))
    for role, email in (
        ("admin", "admin@demo.example.org"),
        ("monitor", "monitor@demo.example.org"),
    ):
        password = secrets.token_urlsafe(12)
        add_staff(email, role, [], password)
        summary.credentials.append((role, email, password))
    for index, site in enumerate(sites):
        email = f"coordinator.{site.code.lower()}@demo.example.org"
        password = secrets.token_urlsafe(12)
        coordinator = add_staff(email, "coordinator", [site.code], password)
        summary.credentials.append(("coordinator", email, password))
        db.session.flush()
        _build_site(site, ("staff", coordinator.id), index, rng, now, summary)
    check_missed_diaries(now)
    db.session.flush()
    summary.alerts = dict(
        db.session.execute(select(Alert.kind, func.count()).group_by(Alert.kind)).all()
    )
    return summary


def _build_site(
    site: Site, actor: Actor, index: int, rng: random.Random, now: datetime, summary: DemoSummary
) -> None:
    for number, (arm, days_ago, zone) in enumerate(PARTICIPANT_PLANS):
        if index == 2 and number == 3:
            zone = TRAVELLER_ZONE  # one participant abroad: their own "yesterday"
        today = now.astimezone(ZoneInfo(zone)).date()
        enrolment = participants.enrol(
            actor,
            site=site,
            arm=arm,
            enrolled_on=today - timedelta(days=days_ago),
            timezone=zone,
            locale="en" if number % 2 else "zh-CN",
        )
        participant = enrolment.participant
        db.session.flush()
        _past_events(participant, actor, rng, today, now)
        story = (index + number) % 4
        summary.entries += _diary(participant, rng, today, story)
        if story == 1:
            excused_days.excuse_days(
                actor,
                participant,
                today - timedelta(days=20),
                today - timedelta(days=16),
                "Hospital stay (paracentesis)",
            )
        if index == 3 and number == 1:
            participants.update_participant(
                actor, participant, {"status": "withdrawn"}, "Moved to another city"
            )
        summary.participants += 1
    db.session.flush()
    _review(site, actor, index, now)


def _past_events(
    participant: Participant, actor: Actor, rng: random.Random, today: date, now: datetime
) -> None:
    """Events whose window has passed took place (one was missed); one upcoming moves."""
    events = schedule.events_of(participant.id)
    for event in events:
        if event.window_end < today:
            if rng.random() < 0.08:
                changes: dict = {"status": "missed"}
                reason: str | None = "Participant could not travel"
            else:
                actual = event.target_date + timedelta(rng.randint(-2, 3))
                changes = {"actual_date": max(actual, participant.enrolled_on)}
                reason = None
            schedule.update_event(actor, participant, event, changes, reason, today, now)
    upcoming = [
        e for e in events if e.status == "scheduled" and e.target_date > today + timedelta(5)
    ]
    if upcoming and rng.random() < 0.5:
        event = upcoming[0]
        schedule.update_event(
            actor,
            participant,
            event,
            {"target_date": event.target_date + timedelta(days=5)},
            "Public holiday week; agreed by phone",
            today,
            now,
        )


def _diary(participant: Participant, rng: random.Random, today: date, story: int) -> int:
    """Up to 60 days of entries: mostly on time, some late, some missing, a few grade 3.

    story 0 ends with four missed days (a missed-diary alert), story 2 has a grade-4 day.
    """
    zone = ZoneInfo(participant.timezone)
    first = max(participant.enrolled_on, today - timedelta(days=DIARY_DAYS))
    made = 0
    day = first
    while day < today:
        days_left = (today - day).days
        skip = rng.random() < 0.08 or (story == 0 and days_left <= 4)
        if not skip:
            late = rng.random() < 0.1
            grade = rng.choices((0, 1, 2, 3), weights=(50, 35, 13, 2))[0]
            if story == 2 and days_left == 3:
                grade = 4
            recorded = datetime.combine(
                day + timedelta(days=1 if late else 0), time(9, 30) if late else time(20, 40), zone
            )
            values = {
                "diary_date": day,
                "abdominal_distension": min(4, grade + rng.randint(-1, 1))
                if grade
                else rng.randint(0, 1),
                "decreased_appetite": rng.randint(0, min(4, grade + 1)),
                "debilitation": rng.randint(0, min(4, grade + 1)),
                "leg_edema": rng.randint(0, 2),
                "discomfort_grade": grade,
                "recorded_at": recorded,
            }
            values["abdominal_distension"] = max(0, values["abdominal_distension"])
            diary.submit(
                participant,
                values,
                ("participant", participant.id),
                recorded + timedelta(minutes=1),
            )
            made += 1
        day += timedelta(days=1)
    return made


def _review(site: Site, actor: Actor, index: int, now: datetime) -> None:
    """The site has already worked on some alerts: one AE recorded, one symptom dismissed.

    At the second site a serious adverse event (hepatocellular carcinoma) is 30 hours
    past awareness and not yet reported: it shows as overdue.
    """
    symptom_alerts = list(
        db.session.scalars(
            select(Alert)
            .where(Alert.site_id == site.id, Alert.kind == "symptom")
            .order_by(Alert.created_at)
            .limit(2)
        )
    )
    if symptom_alerts:
        first = symptom_alerts[0]
        participant = db.session.get(Participant, first.participant_id)
        assert participant is not None
        entry_day = date.fromisoformat(first.details["diary_date"])
        ae = adverse_events.record(
            actor,
            participant,
            {
                "term": "Ascites, worsening",
                "onset_date": entry_day,
                "grade": 2,
                "seriousness": [],
                "relation_to_infusion": "unlikely",
                "outcome": "recovering",
                "diary_entry_id": first.diary_entry_id,
            },
        )
        acknowledge(
            actor,
            first,
            note="Called the participant; diuretics adjusted.",
            decision="adverse_event_recorded",
            adverse_event_id=ae.id,
            now=now,
        )
    if len(symptom_alerts) > 1:
        acknowledge(
            actor,
            symptom_alerts[1],
            note="Known fatigue after a poor night; no new symptom.",
            decision="not_adverse_event",
            adverse_event_id=None,
            now=now,
        )
    if index == 1:
        participant = db.session.scalar(
            select(Participant)
            .where(Participant.site_id == site.id, Participant.arm == "msc")
            .order_by(Participant.enrolled_on)
        )
        assert participant is not None
        adverse_events.record(
            actor,
            participant,
            {
                "term": "Hepatocellular carcinoma",
                "onset_date": now.date() - timedelta(days=3),
                "grade": 4,
                "seriousness": ["tumour"],
                "relation_to_infusion": "possible",
                "outcome": "not_recovered",
                "awareness_at": now - timedelta(hours=30),
            },
        )
