"""Alerts: the open and acknowledged lists, one alert with its acknowledgement form, and the
adverse-event form an "adverse event recorded" decision opens, prefilled from the entry.

Acknowledging is what `POST /api/v1/alerts/<id>/acknowledge` does (coordinators only, the
same service, the same audit row); recording the adverse event and closing the alert with
its id happen in one transaction, so neither is left half done.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, redirect, render_template, request, session, url_for
from marshmallow import ValidationError
from sqlalchemy import case, func, select

from api.access import alert_for, participant_for_writing, site_ids_in_scope, visible_sites
from api.auth import Principal
from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.models import Alert, DiaryEntry, StaffUser
from api.models.adverse_events import SERIOUSNESS_CRITERIA
from api.models.alerts import ALERT_KINDS, ALERT_STATUSES
from api.schemas.adverse_events import OUTCOMES, RELATIONS, AdverseEventCreateSchema
from api.schemas.alerts import AlertAcknowledgeSchema
from api.services import adverse_events as ae_service
from api.services import alerts as alert_service
from console.blueprint import bp
from console.i18n import error_text, translate
from console.security import console_zone, current_principal, current_staff

PAGE_SIZE = 50
SYMPTOM_KINDS = ("symptom", "symptom_urgent")
NOTE_KEY = "alert_note"
SEVERITY = case(
    {"serious_adverse_event": 0, "symptom_urgent": 1, "symptom": 2},
    value=Alert.kind,
    else_=3,
)


def may_acknowledge() -> bool:
    """As in the API: coordinators acknowledge and record adverse events."""
    return current_staff().role == "coordinator"


def _acknowledgers_only() -> None:
    if not may_acknowledge():
        abort(403)


def _alert_row(principal: Principal, alert_id: int) -> tuple[Alert, str, str]:
    """The alert with study code and site code; 404 outside the caller's sites."""
    alert, study_code, site = alert_for(principal, alert_id)
    return alert, study_code, site


def _emails(ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = db.session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


@bp.get("/alerts")
def alerts():  # type: ignore[no-untyped-def]
    """Open alerts (oldest waiting first) or acknowledged ones (newest first)."""
    principal = current_principal()
    status = request.args.get("status") if request.args.get("status") in ALERT_STATUSES else "open"
    kind = request.args.get("kind") if request.args.get("kind") in ALERT_KINDS else None
    site = request.args.get("site") or None
    try:
        page = max(1, int(request.args.get("page", 1)))
    except ValueError:
        page = 1
    stmt = alert_service.alerts_query(site_ids_in_scope(principal, site), status=status, kind=kind)
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    if status == "open":  # the most severe first, then the longest waiting
        stmt = stmt.order_by(None).order_by(SEVERITY, Alert.created_at, Alert.id)
    rows = db.session.execute(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    now = utcnow()
    return render_template(
        "alerts.html",
        rows=[_row_view(alert, code, site_code, now) for alert, code, site_code in rows],
        emails=_emails({alert.acknowledged_by_staff_id for alert, _c, _s in rows}),
        status=status,
        filters={"site": site or "", "kind": kind or ""},
        kinds=ALERT_KINDS,
        sites=list(db.session.scalars(visible_sites(principal))),
        total=total or 0,
        page=page,
        pages=max(1, -(-(total or 0) // PAGE_SIZE)),
    )


def _row_view(alert: Alert, study_code: str, site: str, now: datetime) -> dict[str, Any]:
    return {
        "alert": alert,
        "study_code": study_code,
        "site": site,
        "age_seconds": (now - alert.created_at).total_seconds(),
        "summary": _summary(alert),
    }


def _summary(alert: Alert) -> str:
    details = alert.details or {}
    if alert.kind in SYMPTOM_KINDS:
        return translate(
            "alerts.summary_symptom",
            grade=details.get("discomfort_grade", "?"),
            day=details.get("diary_date", "?"),
        )
    if alert.kind == "missed_diary":
        return translate(
            "alerts.summary_missed",
            n=details.get("days_missed", "?"),
            day=details.get("run_start", "?"),
        )
    return translate("alerts.summary_serious")


@bp.get("/alerts/<int:alert_id>")
def alert(alert_id: int):  # type: ignore[no-untyped-def]
    """One alert: what raised it, the diary entry, and (open, coordinator) the form."""
    principal = current_principal()
    alert, study_code, site = _alert_row(principal, alert_id)
    entry = db.session.get(DiaryEntry, alert.diary_entry_id) if alert.diary_entry_id else None
    return render_template(
        "alert.html",
        view=_row_view(alert, study_code, site, utcnow()),
        entry=entry,
        emails=_emails({alert.acknowledged_by_staff_id}),
        symptom=alert.kind in SYMPTOM_KINDS,
        may_acknowledge=may_acknowledge(),
        errors={},
        values={"note": session.get(NOTE_KEY, {}).get(str(alert_id), "")},
    )


@bp.post("/alerts/<int:alert_id>/acknowledge")
def acknowledge(alert_id: int):  # type: ignore[no-untyped-def]
    """Acknowledge with a note; "adverse event recorded" first opens the prefilled form."""
    _acknowledgers_only()
    principal = current_principal()
    alert, study_code, site = _alert_row(principal, alert_id)
    values = {"note": request.form.get("note", "").strip()}
    if request.form.get("decision"):
        values["decision"] = request.form["decision"]
    try:
        body = AlertAcknowledgeSchema().load(values)
    except ValidationError as exc:
        return _alert_form_again(alert, study_code, site, values, exc.messages)
    if body.get("decision") == "adverse_event_recorded":
        notes = dict(session.get(NOTE_KEY, {}))
        notes[str(alert_id)] = body["note"]
        session[NOTE_KEY] = notes
        return redirect(url_for("console.alert_adverse_event", alert_id=alert_id), 303)
    try:
        alert_service.acknowledge(
            principal.audit_actor(),
            alert,
            note=body["note"],
            decision=body.get("decision"),
            adverse_event_id=None,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(error_text(exc.error, exc.message), "error")
        return redirect(url_for("console.alert", alert_id=alert_id), 303)
    flash(translate("alerts.acknowledged"), "success")
    return redirect(url_for("console.alerts"), 303)


def _alert_form_again(alert: Alert, study_code: str, site: str, values: dict, errors: dict):  # type: ignore[no-untyped-def]
    entry = db.session.get(DiaryEntry, alert.diary_entry_id) if alert.diary_entry_id else None
    page = render_template(
        "alert.html",
        view=_row_view(alert, study_code, site, utcnow()),
        entry=entry,
        emails={},
        symptom=alert.kind in SYMPTOM_KINDS,
        may_acknowledge=True,
        errors=errors,
        values=values,
    )
    return page, 422


def _prefill(alert: Alert, entry: DiaryEntry | None, zone: str) -> dict[str, Any]:
    """The adverse-event form as the entry suggests it; the coordinator completes it."""
    now_local = utcnow().astimezone(ZoneInfo(zone))
    values: dict[str, Any] = {
        "term": "",
        "onset_date": "",
        "grade": "",
        "seriousness": [],
        "relation_to_infusion": "",
        "outcome": "",
        "description": "",
        "awareness_at": now_local.strftime("%Y-%m-%dT%H:%M"),
        "diary_entry_id": "",
    }
    if entry is not None:
        values |= {
            "onset_date": entry.diary_date.isoformat(),
            "grade": str(entry.discomfort_grade),
            "diary_entry_id": str(entry.id),
            "description": translate(
                "ae.prefill_description",
                day=entry.diary_date.isoformat(),
                grade=entry.discomfort_grade,
                a=entry.abdominal_distension,
                b=entry.decreased_appetite,
                c=entry.debilitation,
                d=entry.leg_edema,
                note=entry.note or "",
            ).strip(),
        }
    return values


def _ae_form(alert: Alert, study_code: str, values: dict, errors: dict, status: int = 200):  # type: ignore[no-untyped-def]
    page = render_template(
        "alert_adverse_event.html",
        alert=alert,
        study_code=study_code,
        values=values,
        errors=errors,
        criteria=SERIOUSNESS_CRITERIA,
        relations=RELATIONS,
        outcomes=OUTCOMES,
    )
    return page, status


@bp.get("/alerts/<int:alert_id>/adverse-event")
def alert_adverse_event(alert_id: int):  # type: ignore[no-untyped-def]
    """The adverse-event form, prefilled from the alert's diary entry."""
    _acknowledgers_only()
    alert, study_code, _site = _alert_row(current_principal(), alert_id)
    if alert.status != "open":
        flash(error_text("alert_already_acknowledged"), "error")
        return redirect(url_for("console.alert", alert_id=alert_id), 303)
    entry = db.session.get(DiaryEntry, alert.diary_entry_id) if alert.diary_entry_id else None
    values = _prefill(alert, entry, console_zone())
    values["note"] = session.get(NOTE_KEY, {}).get(str(alert_id), "")
    return _ae_form(alert, study_code, values, {})


AE_TEXT_FIELDS = ("term", "onset_date", "grade", "relation_to_infusion", "outcome", "description")


def _ae_values(form: Any, zone: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the form's values as typed, the body the API's schema loads)."""
    values = {name: form.get(name, "").strip() for name in AE_TEXT_FIELDS}
    values["seriousness"] = form.getlist("seriousness")
    values["awareness_at"] = form.get("awareness_at", "").strip()
    values["diary_entry_id"] = form.get("diary_entry_id", "").strip()
    values["note"] = form.get("note", "").strip()
    body: dict[str, Any] = {k: values[k] for k in AE_TEXT_FIELDS if values[k]}
    body["seriousness"] = values["seriousness"]
    if values["grade"].lstrip("-").isdigit():
        body["grade"] = int(values["grade"])
    if values["diary_entry_id"].isdigit():
        body["diary_entry_id"] = int(values["diary_entry_id"])
    if values["awareness_at"]:
        body["awareness_at"] = _aware(values["awareness_at"], zone)
    return values, body


def _aware(local: str, zone: str) -> str:
    """A `datetime-local` value read in the site's zone, as an ISO instant with offset."""
    try:
        naive = datetime.fromisoformat(local)
    except ValueError:
        return local  # the schema names the field
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=ZoneInfo(zone)).isoformat()


@bp.post("/alerts/<int:alert_id>/adverse-event")
def alert_adverse_event_submit(alert_id: int):  # type: ignore[no-untyped-def]
    """Record the adverse event and acknowledge the alert with it, in one transaction."""
    _acknowledgers_only()
    principal = current_principal()
    alert, study_code, _site = _alert_row(principal, alert_id)
    values, body = _ae_values(request.form, console_zone())
    errors: dict[str, Any] = {}
    try:
        loaded = AdverseEventCreateSchema().load(body)
    except ValidationError as exc:
        errors = dict(exc.messages)
    if not values["note"]:
        errors["note"] = [translate("form.required")]
    if errors:
        return _ae_form(alert, study_code, values, errors, 422)
    participant = participant_for_writing(principal, alert.participant_id)
    try:
        ae = ae_service.record(principal.audit_actor(), participant, loaded)
        db.session.flush()
        alert_service.acknowledge(
            principal.audit_actor(),
            alert,
            note=values["note"],
            decision="adverse_event_recorded",
            adverse_event_id=ae.id,
            now=utcnow(),
        )
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        sentence = error_text(exc.error, exc.message)
        field_errors = {name: [sentence] for name in exc.errors or {"_schema": None}}
        return _ae_form(alert, study_code, values, field_errors, exc.status_code)
    notes = dict(session.get(NOTE_KEY, {}))
    notes.pop(str(alert_id), None)
    session[NOTE_KEY] = notes
    flash(translate("alerts.ae_recorded", term=ae.term), "success")
    return redirect(url_for("console.alert", alert_id=alert_id), 303)
