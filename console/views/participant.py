"""One participant: header, calendar, symptoms, schedule, diary, adverse events, phones.

Reads through the same service functions as the API's staff endpoints; every form posts
to a route below that calls the same write function as the API, then redirects back to
the section it came from.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app, render_template, request, url_for
from sqlalchemy import select

from api.access import participant_for, participant_for_writing
from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.models import DiaryEntry, Participant, StaffUser
from api.models.adverse_events import SERIOUSNESS_CRITERIA
from api.models.participant import PARTICIPANT_STATUSES
from api.schemas.adverse_events import (
    OUTCOMES,
    RELATIONS,
    AdverseEventCreateSchema,
    AdverseEventUpdateSchema,
)
from api.schemas.compliance import ExcusedDayCreateSchema
from api.schemas.diary import StaffDiaryEntryCreateSchema, StaffDiaryEntryUpdateSchema
from api.schemas.participant import ParticipantUpdateSchema
from api.schemas.schedule import ScheduleEventUpdateSchema
from api.services import adverse_events as ae_service
from api.services import compliance as compliance_service
from api.services import devices as device_service
from api.services import diary as diary_service
from api.services import excused_days as excused_service
from api.services import participants as participant_service
from api.services import reminders as reminder_service
from api.services import schedule as schedule_service
from api.services.alerts import alerts_query
from api.services.diary_amend import amend
from console import calendar_view, charts
from console.blueprint import bp
from console.forms import form_values, load, write_then_redirect
from console.i18n import translate
from console.security import current_principal, requires

SCORES = (
    "abdominal_distension",
    "decreased_appetite",
    "debilitation",
    "leg_edema",
    "discomfort_grade",
)
ENTRY_PAGE = 30
REMINDER_DAYS_BACK = 14


def _page_url(participant_id: int, anchor: str = "") -> str:
    return url_for("console.participant", participant_id=participant_id) + anchor


def _entries_page() -> int:
    try:
        return max(1, int(request.args.get("entries_page", 1)))
    except ValueError:
        return 1


def staff_emails(ids: set[int]) -> dict[int, str]:
    """Staff e-mails by id: version history names people, not ids."""
    if not ids:
        return {}
    rows = db.session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(ids)))
    return dict(rows.all())


@bp.get("/participants/<int:participant_id>")
def participant(participant_id: int):  # type: ignore[no-untyped-def]
    """Everything about one participant, on one page."""
    principal = current_principal()
    p = participant_for(principal, participant_id)
    now = utcnow()
    today = participant_service.local_today(p, now)
    cal = compliance_service.calendar(p, now)
    chart_days = request.args.get("chart", "90")
    chart_days = chart_days if chart_days in CHART_RANGES else "90"
    all_entries = _day_scores(p.id)
    page_no = _entries_page()
    shown = list(
        db.session.scalars(
            diary_service.entries_of(p.id, with_versions=True)
            .limit(ENTRY_PAGE)
            .offset((page_no - 1) * ENTRY_PAGE)
        ).unique()
    )
    reminders = reminder_service.with_deliveries(
        list(
            db.session.scalars(
                reminder_service.reminders_of(
                    p, today - timedelta(days=REMINDER_DAYS_BACK), today + timedelta(days=3)
                )
            )
        )
    )
    adverse_events = list(db.session.scalars(ae_service.adverse_events_of(p.id)))
    schedule = list(schedule_service.events_of(p.id))
    people = {v.actor_id for e in shown for v in e.versions if v.actor_type == "staff"}
    people |= {ae.created_by_staff_id for ae in adverse_events}
    return render_template(
        "participant.html",
        participant=p,
        now=now,
        today=today,
        zone=p.site.timezone,
        summary=cal["summary"],
        months=calendar_view.months(cal, all_entries, active=p.is_active),
        chart_days=chart_days,
        symptom_chart=_symptom_chart(p, all_entries, schedule, today, chart_days),
        schedule=schedule,
        entries=shown,
        entries_page=page_no,
        entries_pages=max(1, -(-len(all_entries) // ENTRY_PAGE)),
        excused=list(db.session.scalars(excused_service.excused_days_of(p.id))),
        adverse_events=adverse_events,
        deadline=ae_service.report_deadline,
        overdue=lambda ae: ae_service.is_overdue(ae, now),
        alerts=list(db.session.execute(alerts_query(None, participant_id=p.id)).all()),
        reminders=reminders,
        filled_after=_filled_after(all_entries),
        devices=list(db.session.scalars(device_service.devices_of(p))),
        emails=staff_emails(people),
        scores=SCORES,
        score_options=_score_options(),
        statuses=[s for s in PARTICIPANT_STATUSES if s != p.status],
        criteria=SERIOUSNESS_CRITERIA,
        relations=RELATIONS,
        outcomes=OUTCOMES,
        new_entry_id=uuid.uuid4(),
    )


CHART_RANGES = ("90", "365", "all")


def _day_scores(participant_id: int) -> list[Any]:
    """Every entry's day, scores and arrival, newest first, as plain rows: the calendar,
    the chart and the reminders' "filled" column need no more, and three years of full
    entries cost more to build as objects than the rest of the page."""
    return list(
        db.session.execute(
            select(
                DiaryEntry.id,
                DiaryEntry.diary_date,
                *(getattr(DiaryEntry, name) for name in SCORES),
                DiaryEntry.received_at,
            )
            .where(DiaryEntry.participant_id == participant_id)
            .order_by(DiaryEntry.diary_date.desc())
        )
    )


def _symptom_chart(
    p: Participant, entries: list[Any], schedule: list[Any], today: Any, span: str
) -> Any:
    """The four symptoms and the discomfort grade by day, infusion days marked."""
    first = p.enrolled_on if span == "all" else max(p.enrolled_on, today - timedelta(int(span)))
    days = [first + timedelta(n) for n in range((today - first).days + 1)]
    by_day = {entry.diary_date: entry for entry in entries}

    def values(name: str) -> list[int | None]:
        return [getattr(by_day[d], name) if d in by_day else None for d in days]

    infusions = [
        (event.actual_date or event.target_date, translate("chart.infusion_n", n=event.number))
        for event in schedule
        if event.kind == "infusion" and event.status != "cancelled"
    ]
    return charts.symptom_chart(
        title=translate("participant.symptoms"),
        desc=translate("chart.symptoms_desc", code=p.study_code),
        days=days,
        scores={translate(key): values(name) for name, key in calendar_view.SCORE_KEYS[:4]},
        grade_label=translate("score.grade_long"),
        grades=values("discomfort_grade"),
        infusion_days=infusions,
        day_header=translate("col.day"),
        mark_header=translate("chart.mark"),
    )


def _score_options() -> dict[str, list[tuple[int, str]]]:
    """Each score's choices 0-4 with their words, translated once for the page's thirty
    amendment forms rather than once per option."""
    return {
        name: [
            (v, translate(("grade." if name == "discomfort_grade" else "severity.") + str(v)))
            for v in range(5)
        ]
        for name in SCORES
    }


def _filled_after(entries: list[Any]) -> dict[Any, Any]:
    """When each diary day's entry arrived: shows whether a reminder was followed."""
    return {entry.diary_date: entry.received_at for entry in entries}


def _writable(participant_id: int) -> tuple[Any, Participant]:
    principal = current_principal()
    return principal, participant_for_writing(principal, participant_id)


@bp.post("/participants/<int:participant_id>/schedule/<int:event_id>")
@requires("schedule")
def update_event(participant_id: int, event_id: int):  # type: ignore[no-untyped-def]
    """Record the day an event took place, mark it missed, or reschedule it."""
    principal, p = _writable(participant_id)

    def action() -> str:
        body = load(
            ScheduleEventUpdateSchema,
            form_values(("target_date", "actual_date", "status", "reason")),
        )
        event = schedule_service.event_for(p.id, event_id, lock=True)
        now = utcnow()
        reason = body.pop("reason", None)
        schedule_service.update_event(
            principal.audit_actor(),
            p,
            event,
            body,
            reason,
            participant_service.local_today(p, now),
            now,
        )
        return translate("form.saved")

    return write_then_redirect(_page_url(p.id, f"#event-{event_id}"), action)


@bp.post("/participants/<int:participant_id>/diary-entries")
@requires("diary_entry")
def enter_on_behalf(participant_id: int):  # type: ignore[no-untyped-def]
    """Enter a day from the paper back-up (replay-safe: the form carries its own id)."""
    principal, p = _writable(participant_id)

    def action() -> str:
        values = form_values(
            ("client_entry_id", "diary_date", *SCORES, "note", "recorded_at", "reason"),
            ints=SCORES,
            instants=("recorded_at",),
            zone=p.site.timezone,
        )
        body = load(StaffDiaryEntryCreateSchema, values)
        reason = body.pop("reason")
        study = current_app.extensions["study"]
        diary_service.submit(p, body, principal.audit_actor(), utcnow(), study, reason=reason)
        return translate("diary.entered")

    return write_then_redirect(_page_url(p.id, "#diary"), action)


class StaleForm(DomainError):
    status_code = 412
    error = "stale_version"


@bp.post("/participants/<int:participant_id>/diary-entries/<int:entry_id>")
@requires("amend")
def amend_entry(participant_id: int, entry_id: int):  # type: ignore[no-untyped-def]
    """Amend with a reason; a form opened on an older version is refused, never applied."""
    principal, p = _writable(participant_id)

    def action() -> str:
        entry = diary_service.entry_of(p.id, entry_id, with_versions=True)
        if request.form.get("version") != str(entry.version):
            raise StaleForm("The entry changed after the form was opened.")
        body = load(
            StaffDiaryEntryUpdateSchema,
            form_values(("diary_date", *SCORES, "note", "reason"), ints=SCORES),
        )
        reason = body.pop("reason")
        if "note" not in body and request.form.get("note") == "" and entry.note:
            body["note"] = None
        study = current_app.extensions["study"]
        amend(entry, p, body, principal.audit_actor(), utcnow(), study, reason=reason)
        return translate("diary.amended", version=entry.version)

    return write_then_redirect(_page_url(p.id, f"#entry-{entry_id}"), action)


@bp.post("/participants/<int:participant_id>/excused-days")
@requires("excuse")
def excuse_days(participant_id: int):  # type: ignore[no-untyped-def]
    """Excuse a range of days (a hospital stay) with a reason."""
    principal, p = _writable(participant_id)

    def action() -> str:
        body = load(ExcusedDayCreateSchema, form_values(("from", "to", "reason")))
        _days, added = excused_service.excuse_days(
            principal.audit_actor(), p, body["from_"], body["to"], body["reason"]
        )
        return translate("excused.added", n=added)

    return write_then_redirect(_page_url(p.id, "#excused"), action)


AE_FIELDS = (
    "term",
    "onset_date",
    "grade",
    "relation_to_infusion",
    "outcome",
    "diary_entry_id",
    "description",
    "awareness_at",
    "reported_at",
)


def _ae_values(zone: str, *extra: str) -> dict[str, Any]:
    return form_values(
        (*AE_FIELDS, *extra),
        ints=("grade", "diary_entry_id"),
        instants=("awareness_at", "reported_at"),
        lists=("seriousness",),
        zone=zone,
    )


@bp.post("/participants/<int:participant_id>/adverse-events")
@requires("adverse_event")
def record_adverse_event(participant_id: int):  # type: ignore[no-untyped-def]
    """Record an adverse event; a serious one starts the 24-hour clock."""
    principal, p = _writable(participant_id)

    def action() -> str:
        body = load(AdverseEventCreateSchema, _ae_values(p.site.timezone))
        ae_service.record(principal.audit_actor(), p, body)
        return translate("ae.recorded")

    return write_then_redirect(_page_url(p.id, "#adverse-events"), action)


@bp.post("/participants/<int:participant_id>/adverse-events/<int:ae_id>")
@requires("adverse_event_edit")
def amend_adverse_event(participant_id: int, ae_id: int):  # type: ignore[no-untyped-def]
    """Change an adverse event with a reason (a stale form is refused)."""
    principal, p = _writable(participant_id)

    def action() -> str:
        ae = ae_service.adverse_event_for(p, ae_id, lock=True)
        if request.form.get("version") != str(ae.version):
            raise StaleForm("The adverse event changed after the form was opened.")
        body = load(AdverseEventUpdateSchema, _ae_values(p.site.timezone, "reason"))
        reason = body.pop("reason")
        ae_service.amend(principal.audit_actor(), p, ae, body, reason)
        return translate("form.saved")

    return write_then_redirect(_page_url(p.id, f"#ae-{ae_id}"), action)


@bp.post("/participants/<int:participant_id>/status")
@requires("participant")
def change_status(participant_id: int):  # type: ignore[no-untyped-def]
    """Change the status with a reason, after a confirmation step."""
    principal, p = _writable(participant_id)
    values = form_values(("status", "reason"))
    if request.form.get("confirmed") != "yes":
        return render_template("status_confirm.html", participant=p, values=values)

    def action() -> str:
        body = load(ParticipantUpdateSchema, values)
        reason = body.pop("reason", None)
        participant_service.update_participant(principal.audit_actor(), p, body, reason)
        return translate("status.changed", status=translate(f"status.{p.status}"))

    return write_then_redirect(_page_url(p.id, "#status"), action)
