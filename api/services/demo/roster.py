"""The demo's cast: the seven stories, the moments they use, the summary and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

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
