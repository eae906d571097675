"""Participants: the filtered, sortable table, and enrolment (with the one-time code)."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, session, url_for
from marshmallow import ValidationError

from api.access import participant_for_writing, site_for_code, site_ids_in_scope, visible_sites
from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.models.participant import ARMS, LOCALES, PARTICIPANT_STATUSES
from api.schemas.participant import ParticipantCreateSchema
from api.services import participants as participant_service
from api.services.roster import SORT_KEYS, roster
from console.blueprint import bp
from console.i18n import translate
from console.qr import qr_svg
from console.security import current_principal, requires

PAGE_SIZE = 50
ENROLMENT_KEY = "one_time_activation"


def _int_arg(name: str, default: int) -> int:
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


@bp.get("/participants")
def participants():  # type: ignore[no-untyped-def]
    """The participants of the caller's sites, filtered by site, arm and status."""
    principal = current_principal()
    site = request.args.get("site") or None
    arm = request.args.get("arm") if request.args.get("arm") in ARMS else None
    status = request.args.get("status")
    status = status if status in PARTICIPANT_STATUSES else None
    sort = request.args.get("sort") if request.args.get("sort") in SORT_KEYS else "study_code"
    descending = request.args.get("dir") == "desc"
    page = roster(
        site_ids_in_scope(principal, site),
        utcnow(),
        arm=arm,
        status=status,
        sort=sort,
        descending=descending,
        page=_int_arg("page", 1),
        page_size=PAGE_SIZE,
    )
    filters = {"site": site or "", "arm": arm or "", "status": status or ""}
    return render_template(
        "participants.html",
        page=page,
        filters=filters,
        sort=sort,
        descending=descending,
        sites=list(db.session.scalars(visible_sites(principal))),
        arms=ARMS,
        statuses=PARTICIPANT_STATUSES,
    )


def _enrol_form(values: dict[str, Any], errors: dict[str, Any], status: int = 200):  # type: ignore[no-untyped-def]
    principal = current_principal()
    page = render_template(
        "enrol.html",
        values=values,
        errors=errors,
        sites=list(db.session.scalars(visible_sites(principal))),
        arms=ARMS,
        locales=LOCALES,
    )
    return page, status


@bp.get("/participants/new")
@requires("enrol")
def enrol_form():  # type: ignore[no-untyped-def]
    """The enrolment form (coordinators and admins)."""
    sites = list(db.session.scalars(visible_sites(current_principal())))
    defaults = {
        "site": sites[0].code if len(sites) == 1 else "",
        "timezone": sites[0].timezone if sites else "Asia/Shanghai",
        "locale": "zh-CN",
        "enrolled_on": utcnow().astimezone(_zone(sites)).date().isoformat(),
    }
    return _enrol_form(defaults, {})


def _zone(sites: list[Any]) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(sites[0].timezone if sites else "Asia/Shanghai")


ENROL_FIELDS = ("site", "arm", "enrolled_on", "timezone", "locale")


@bp.post("/participants/new")
@requires("enrol")
def enrol():  # type: ignore[no-untyped-def]
    """Enrol through the API's schema and service; the code is shown once, after redirect."""
    values = {name: request.form.get(name, "").strip() for name in ENROL_FIELDS}
    for optional in ("reminder_time", "diary_reminder_time"):
        if request.form.get(optional, "").strip():
            values[optional] = request.form[optional].strip()
    try:
        body = ParticipantCreateSchema().load(values)
    except ValidationError as exc:
        return _enrol_form(values, exc.messages, 422)
    principal = current_principal()
    try:
        site = site_for_code(principal, body.pop("site"))
        enrolment = participant_service.enrol(principal.audit_actor(), site=site, **body)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return _enrol_form(values, exc.errors or {"_schema": [exc.error]}, exc.status_code)
    _keep_code_once(enrolment)
    return redirect(url_for("console.activation", participant_id=enrolment.participant.id), 303)


def _keep_code_once(enrolment: Any) -> None:
    session[ENROLMENT_KEY] = {
        "participant_id": enrolment.participant.id,
        "code": enrolment.activation_code,
        "expires_at": enrolment.activation_code_expires_at.isoformat(),
    }


@bp.post("/participants/<int:participant_id>/activation-code")
@requires("activation")
def reissue_code(participant_id: int):  # type: ignore[no-untyped-def]
    """Issue a new activation code (the participant's phone sessions end)."""
    principal = current_principal()
    participant = participant_for_writing(principal, participant_id)
    reason = request.form.get("reason", "").strip() or None
    enrolment = participant_service.reissue_activation_code(
        principal.audit_actor(), participant, reason
    )
    db.session.commit()
    _keep_code_once(enrolment)
    return redirect(url_for("console.activation", participant_id=participant_id), 303)


@bp.get("/participants/<int:participant_id>/activation")
@requires("activation")
def activation(participant_id: int):  # type: ignore[no-untyped-def]
    """The one-time code as text, QR code and printable slip; gone on reload."""
    participant = participant_for_writing(current_principal(), participant_id)
    shown = session.get(ENROLMENT_KEY)
    if not shown or shown.get("participant_id") != participant.id:
        return render_template("activation.html", participant=participant, code=None)
    session.pop(ENROLMENT_KEY)
    from datetime import datetime

    return render_template(
        "activation.html",
        participant=participant,
        code=shown["code"],
        expires_at=datetime.fromisoformat(shown["expires_at"]),
        qr=qr_svg(shown["code"], title=translate("activation.qr_alt", code=shown["code"])),
    )
