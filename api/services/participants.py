"""Enrolment, profile and status changes, activation codes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from api.audit import Actor, record_audit, snapshot
from api.auth import hash_secret
from api.clock import utcnow
from api.errors import Invalid
from api.extensions import db
from api.models import ActivationCode, Participant, Site
from api.models.participant import ParticipantFacts
from api.services import schedule
from api.services.rules import Refused
from api.services.sessions import normalise_activation_code, revoke_all_sessions
from api.settings import settings, study
from api.study import StudyConfig

# Crockford's base32 without I, L, O, U: easy to read aloud and type on a phone.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_LENGTH = 12
PROFILE_FIELDS = ("timezone", "locale", "reminder_time", "diary_reminder_time")
AUDITED_FIELDS = ("status", "status_reason", *PROFILE_FIELDS)


def study_config() -> StudyConfig:
    return study()


def local_today(participant: ParticipantFacts, now: datetime) -> date:
    """The participant's calendar date at `now`, in their own time zone (DST included)."""
    return now.astimezone(ZoneInfo(participant.timezone)).date()


def _new_activation_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))


def _issue_activation_code(
    participant: Participant, staff_id: int | None, now: datetime
) -> Enrolment:
    """Revoke any unused code and store a new one (hashed); returns the plain code once."""
    db.session.execute(
        update(ActivationCode)
        .where(
            ActivationCode.participant_id == participant.id,
            ActivationCode.used_at.is_(None),
            ActivationCode.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    code = _new_activation_code()
    expires_at = now + settings().activation_code_ttl
    db.session.add(
        ActivationCode(
            participant_id=participant.id,
            code_hash=hash_secret(normalise_activation_code(code)),
            created_at=now,
            expires_at=expires_at,
            created_by_staff_id=staff_id,
        )
    )
    return Enrolment(participant, code, expires_at)


def _next_study_code(site: Site) -> str:
    """Take the site's next number; the row lock serialises concurrent enrolments."""
    db.session.execute(
        update(Site)
        .where(Site.id == site.id)
        .values(next_participant_number=Site.next_participant_number + 1)
    )
    number = db.session.execute(
        select(Site.next_participant_number).where(Site.id == site.id)
    ).scalar_one()
    return f"{site.code}-{number - 1:04d}"


@dataclass(frozen=True)
class Enrolment:
    """A participant with their freshly issued (plain) activation code, for one answer."""

    participant: Participant
    activation_code: str
    activation_code_expires_at: datetime


def enrol(
    actor: Actor,
    *,
    site: Site,
    arm: str,
    enrolled_on: Any,
    timezone: str,
    locale: str,
    reminder_time: str | None = None,
    diary_reminder_time: str | None = None,
) -> Enrolment:
    """Enrol a participant: study code, schedule, one-time activation code, audit row."""
    study = study_config()
    now = utcnow()
    if arm not in study.arms:
        raise Invalid("arm", f"Must be one of {sorted(study.arms)}.")
    if enrolled_on > now.astimezone(ZoneInfo(timezone)).date():
        raise Refused(
            "enrolled_on", "Enrolment cannot be in the future.", error="enrolled_on_in_future"
        )
    participant = Participant(
        study_code=_next_study_code(site),
        site_id=site.id,
        arm=arm,
        enrolled_on=enrolled_on,
        timezone=timezone,
        locale=locale,
        status="active",
        reminder_time=reminder_time or study.reminder_time.strftime("%H:%M"),
        diary_reminder_time=diary_reminder_time or study.diary_reminder_time.strftime("%H:%M"),
        created_at=now,
        created_by_staff_id=actor[1] if actor[0] == "staff" else None,
        version=1,
        auth_epoch=0,
    )
    db.session.add(participant)
    db.session.flush()
    db.session.add_all(schedule.protocol_events(participant, study, now))
    enrolment = _issue_activation_code(participant, participant.created_by_staff_id, now)
    record_audit(
        actor,
        "participant.enrolled",
        "participant",
        participant.id,
        participant_id=participant.id,
        after=snapshot(participant, ("study_code", "arm", "enrolled_on", *AUDITED_FIELDS)),
    )
    return enrolment


def update_profile(actor: Actor, participant: Participant, changes: dict[str, Any]) -> Participant:
    """Change time zone, locale or reminder times (the participant's or the site's doing)."""
    changes = {k: v for k, v in changes.items() if k in PROFILE_FIELDS}
    return _apply(actor, participant, changes, reason=None, action="participant.updated")


def update_participant(
    actor: Actor, participant: Participant, changes: dict[str, Any], reason: str | None
) -> Participant:
    """Staff change: profile fields and/or status (status changes require a reason)."""
    new_status = changes.get("status")
    if new_status is not None and new_status != participant.status:
        if not reason:
            raise Refused(
                "reason", "A reason is required to change the status.", error="reason_required"
            )
        if participant.status != "active":
            raise Refused(
                "status",
                f"The participant is already {participant.status}; that status is final.",
                error="status_final",
            )
    elif "status" in changes:
        changes = {k: v for k, v in changes.items() if k != "status"}
    return _apply(actor, participant, changes, reason=reason, action="participant.updated")


def _apply(
    actor: Actor,
    participant: Participant,
    changes: dict[str, Any],
    *,
    reason: str | None,
    action: str,
) -> Participant:
    changed = {k: v for k, v in changes.items() if getattr(participant, k) != v}
    if not changed:
        return participant
    now = utcnow()
    before = snapshot(participant, AUDITED_FIELDS)
    for name, value in changed.items():
        setattr(participant, name, value)
    if "status" in changed:
        participant.status_reason = reason
        participant.status_changed_at = now
        participant.status_changed_on = local_today(participant, now)
        schedule.cancel_future_events(participant.id, local_today(participant, now), now)
        action = "participant.status_changed"
    participant.version += 1
    record_audit(
        actor,
        action,
        "participant",
        participant.id,
        participant_id=participant.id,
        before=before,
        after=snapshot(participant, AUDITED_FIELDS),
        reason=reason,
    )
    return participant


def reissue_activation_code(
    actor: Actor, participant: Participant, reason: str | None
) -> Enrolment:
    """A new one-time code (lost phone): old codes and every session of the participant end."""
    if not participant.is_active:
        raise Refused(
            "status", "Only active participants can be given a code.", error="participant_inactive"
        )
    now = utcnow()
    enrolment = _issue_activation_code(participant, actor[1] if actor[0] == "staff" else None, now)
    revoke_all_sessions("participant", participant.id)
    participant.auth_epoch += 1
    participant.version += 1
    record_audit(
        actor,
        "participant.activation_code_issued",
        "participant",
        participant.id,
        participant_id=participant.id,
        reason=reason,
    )
    return enrolment
