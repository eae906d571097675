"""The coordinators' worklist: what needs doing today at a set of sites.

Read-only queries over the same models and rules as the API (the 24-hour clock comes
from `adverse_events.report_deadline`, the 80 % list from `compliance_report`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, select

from api.extensions import db
from api.models import AdverseEvent, Alert, Device, Participant, Reminder, ScheduleEvent, Site
from api.services.adverse_events import report_deadline
from api.services.alerts import alerts_query
from api.services.compliance import ParticipantCompliance, compliance_report, local_day

# Most urgent first.
ALERT_PRIORITY = ("serious_adverse_event", "symptom_urgent", "symptom", "missed_diary")
UNREACHABLE_STATUSES = ("undeliverable", "failed")
MAX_ITEMS = 200


@dataclass
class AlertItem:
    alert: Alert
    study_code: str
    site: str
    age_seconds: float


@dataclass
class SeriousEventItem:
    adverse_event: AdverseEvent
    participant_id: int
    study_code: str
    site: str
    deadline: datetime
    seconds_left: float

    @property
    def overdue(self) -> bool:
        return self.seconds_left < 0


@dataclass
class EventItem:
    event: ScheduleEvent
    study_code: str
    site: str
    past_window: bool


@dataclass
class PhoneItem:
    participant_id: int
    study_code: str
    site: str
    reason: str  # "no_device" or the last reminder's status
    last_error: str | None = None
    at: datetime | None = None


@dataclass
class Worklist:
    alerts: list[AlertItem] = field(default_factory=list)
    serious_events: list[SeriousEventItem] = field(default_factory=list)
    low_compliance: list[ParticipantCompliance] = field(default_factory=list)
    events: list[EventItem] = field(default_factory=list)
    phones: list[PhoneItem] = field(default_factory=list)
    threshold: float = 0.8
    window_days: int = 14

    @property
    def empty(self) -> bool:
        return not (
            self.alerts or self.serious_events or self.low_compliance or self.events or self.phones
        )


def open_alerts(site_ids: list[int], now: datetime) -> list[AlertItem]:
    """Open alerts, the most serious kind first, then the oldest."""
    priority = case(
        {kind: rank for rank, kind in enumerate(ALERT_PRIORITY)},
        value=Alert.kind,
        else_=len(ALERT_PRIORITY),
    )
    stmt = (
        alerts_query(site_ids, status="open")
        .order_by(None)
        .order_by(priority, Alert.created_at, Alert.id)
        .limit(MAX_ITEMS)
    )
    return [
        AlertItem(alert, code, site, (now - alert.created_at).total_seconds())
        for alert, code, site in db.session.execute(stmt)
    ]


def unreported_serious_events(site_ids: list[int], now: datetime) -> list[SeriousEventItem]:
    """Serious adverse events not yet reported to the sponsor, nearest deadline first."""
    stmt = (
        select(AdverseEvent, Participant.id, Participant.study_code, Site.code)
        .join(Participant, Participant.id == AdverseEvent.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(
            Participant.site_id.in_(site_ids),
            AdverseEvent.reported_at.is_(None),
            AdverseEvent.awareness_at.is_not(None),
        )
    )
    items = []
    for ae, participant_id, code, site in db.session.execute(stmt):
        deadline = report_deadline(ae)
        if deadline is not None:
            seconds = (deadline - now).total_seconds()
            items.append(SeriousEventItem(ae, participant_id, code, site, deadline, seconds))
    return sorted(items, key=lambda item: item.seconds_left)


def _week_end(today: date) -> date:
    return today + timedelta(days=6 - today.weekday())


def due_events(site_ids: list[int], now: datetime) -> list[EventItem]:
    """Events whose window is open this week, or has closed with no actual date."""
    sites = db.session.execute(select(Site.id, Site.timezone).where(Site.id.in_(site_ids)))
    items: list[EventItem] = []
    for site_id, zone in sites:
        today = local_day(zone, now)
        stmt = (
            select(ScheduleEvent, Participant.study_code, Site.code)
            .join(Participant, Participant.id == ScheduleEvent.participant_id)
            .join(Site, Site.id == Participant.site_id)
            .where(
                Participant.site_id == site_id,
                Participant.status == "active",
                ScheduleEvent.status == "scheduled",
                ScheduleEvent.actual_date.is_(None),
                ScheduleEvent.window_start <= _week_end(today),
            )
            .order_by(ScheduleEvent.window_end, ScheduleEvent.id)
            .limit(MAX_ITEMS)
        )
        for event, code, site in db.session.execute(stmt):
            items.append(EventItem(event, code, site, past_window=event.window_end < today))
    return sorted(items, key=lambda item: (not item.past_window, item.event.window_end))


def unreachable_phones(site_ids: list[int]) -> list[PhoneItem]:
    """Active participants with no active phone, or whose last reminder did not arrive."""
    active = and_(Participant.site_id.in_(site_ids), Participant.status == "active")
    has_device = exists().where(Device.participant_id == Participant.id, Device.active.is_(True))
    no_device = (
        select(Participant.id, Participant.study_code, Site.code)
        .join(Site, Site.id == Participant.site_id)
        .where(active, ~has_device)
        .order_by(Participant.study_code)
        .limit(MAX_ITEMS)
    )
    items = [
        PhoneItem(pid, code, site, "no_device") for pid, code, site in db.session.execute(no_device)
    ]
    seen = {item.participant_id for item in items}
    failing = _failing_reminders(active)
    for reminder, code, site in db.session.execute(failing):
        if reminder.participant_id not in seen:
            seen.add(reminder.participant_id)
            items.append(
                PhoneItem(
                    reminder.participant_id,
                    code,
                    site,
                    reminder.status,
                    reminder.last_error,
                    reminder.updated_at,
                )
            )
    return items


def _failing_reminders(active: Any) -> Any:
    """Reminders that did not arrive and are their participant's last one sent or tried."""
    # Only these sites' active participants' reminders: the cost follows the sites' rows,
    # not the whole reminders table's (read through the participant_id index).
    in_scope = select(Participant.id).where(active)
    last_done = (
        select(Reminder.participant_id, func.max(Reminder.updated_at).label("at"))
        .where(
            Reminder.participant_id.in_(in_scope),
            Reminder.status.in_(("sent", *UNREACHABLE_STATUSES)),
        )
        .group_by(Reminder.participant_id)
        .subquery()
    )
    return (
        select(Reminder, Participant.study_code, Site.code)
        .join(
            last_done,
            and_(
                last_done.c.participant_id == Reminder.participant_id,
                last_done.c.at == Reminder.updated_at,
            ),
        )
        .join(Participant, Participant.id == Reminder.participant_id)
        .join(Site, Site.id == Participant.site_id)
        .where(active, Reminder.status.in_(UNREACHABLE_STATUSES))
        .limit(MAX_ITEMS)
    )


def worklist(site_ids: list[int], now: datetime) -> Worklist:
    """Everything the Today page lists, for these sites."""
    report: dict[str, Any] = compliance_report(site_ids, now)
    return Worklist(
        alerts=open_alerts(site_ids, now),
        serious_events=unreported_serious_events(site_ids, now),
        low_compliance=sorted(
            report["below_threshold"], key=lambda row: (row.rate_last_14_days or 0, row.study_code)
        ),
        events=due_events(site_ids, now),
        phones=unreachable_phones(site_ids),
        threshold=report["threshold"],
        window_days=report["window_days"],
    )
