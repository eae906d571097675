"""Every stable `error` code the service answers, with its meaning (docs/errors.md in full).

A code is a contract: programs branch on it, so it is never renamed. A new code is named
`<subject>_<condition>`: what the rule is about, then what is wrong with it
(`alert_already_acknowledged`, `diary_date_in_future`, `token_expired`). `LEGACY` lists the
codes named before this rule that do not follow it; it never grows.
"""

from __future__ import annotations

import re

# Two or more lower-case words, joined by underscores.
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)+$")
# Words that name a condition: a code starting with one puts the condition first.
CONDITION_WORDS = frozenset(
    {
        "after",
        "bad",
        "before",
        "forbidden",
        "internal",
        "invalid",
        "last",
        "missing",
        "not",
        "one",
        "too",
        "unknown",
        "unsupported",
        "wrong",
    }
)


def follows_pattern(code: str) -> bool:
    """`<subject>_<condition>`: several snake_case words, the first naming a subject."""
    return bool(_SNAKE.match(code)) and code.split("_", 1)[0] not in CONDITION_WORDS


CODES: dict[str, str] = {
    # By HTTP status, when no more precise code applies.
    "bad_request": "the request cannot be read (e.g. a body that is not JSON)",
    "unauthorized": "no valid credentials (the default 401)",
    "forbidden": "the caller may not do this (the default 403)",
    "not_found": "it does not exist or is not the caller's to see (the default 404)",
    "method_not_allowed": "the route does not take this HTTP method",
    "conflict": "the request conflicts with the current state (the default 409)",
    "precondition_failed": "If-Match names an older version: read it again",
    "payload_too_large": "the body is larger than MAX_CONTENT_LENGTH",
    "unsupported_media_type": "the body is not of a media type the route takes",
    "validation_failed": "input the schema rejects; `errors` names each field",
    "precondition_required": "a write that needs If-Match came without it",
    "too_many_attempts": "too many attempts; wait Retry-After seconds",
    "internal_error": "a bug; the request's transaction was rolled back",
    "service_unavailable": "a service the request needs is down; retry later",
    "database_unavailable": "the database cannot be reached or is locked; retry later",
    "migrations_pending": "the database is behind this release's migrations (readiness)",
    # Who is calling (401, 403).
    "missing_token": "no bearer token",
    "invalid_token": "a malformed, foreign or not-yet-valid access token",
    "token_expired": "the access token ran out: refresh it",
    "session_revoked": "the account or session was ended",
    "session_expired": "the session reached REFRESH_FAMILY_MAX_DAYS: sign in again",
    "invalid_credentials": "wrong e-mail or password",
    "wrong_password": "a wrong current password when changing one's own",
    "invalid_activation_code": "an activation code unknown, used, revoked or expired",
    "invalid_refresh_token": "a refresh token unknown or expired",
    "refresh_token_reused": "a refresh token presented again after the grace period",
    "forbidden_role": "the caller's role may never do this",
    "password_change_required": "a reset password must be changed first",
    "metrics_forbidden": "/metrics is not served to this client",
    # Not found, or not the caller's to see (404).
    "participant_not_found": "no such participant (or not the caller's)",
    "entry_not_found": "no such diary entry (or not the caller's)",
    "schedule_event_not_found": "no such schedule event (or not the caller's)",
    "alert_not_found": "no such alert (or not at the caller's sites)",
    "adverse_event_not_found": "no such adverse event (or not the caller's)",
    "device_not_found": "no such device of the participant's",
    "notification_not_found": "no such reminder of the participant's",
    "staff_not_found": "no such staff account",
    "site_not_found": "no such site (or not the caller's)",
    "unknown_resource_type": "no FHIR export of that resource type",
    # Rules of the trial (409).
    "entry_exists_for_date": "the day already has an entry (existing_entry_id): amend it",
    "backfill_window_closed": "a participant's entry for a day before the backfill window",
    "diary_date_in_future": "the diary day is after the participant's today",
    "diary_date_before_enrolment": "the diary day is before enrolment",
    "diary_period_ended": "the diary day is after the diary period",
    "entry_locked": "the participant's correction comes after the diary day ended",
    "participant_inactive": "the participant is withdrawn, completed or deceased",
    "enrolled_on_in_future": "an enrolment date after today",
    "reason_required": "a change that needs a reason came without one",
    "status_final": "withdrawn, completed and deceased are final",
    "schedule_event_cancelled": "the schedule event was cancelled",
    "schedule_event_not_scheduled": "the event took place or was missed: it cannot move",
    "one_change_at_a_time": "a reschedule together with an actual date or status",
    "actual_date_required": "completing an event without its actual date",
    "event_took_place": "marking missed an event with an actual date",
    "event_completed": "marking missed an event already completed",
    "date_in_future": "a date or instant after now",
    "date_in_past": "a new target date before today",
    "before_enrolment": "a date before enrolment",
    "date_range_reversed": "excused days: `to` before `from`",
    "date_range_too_long": "excused days: more than 366 at once",
    "after_diary_period": "excused days beyond the diary period",
    "reported_before_awareness": "an adverse event reported before the site was aware of it",
    "unknown_diary_entry": "an adverse event linked to an entry not the participant's",
    "alert_already_acknowledged": "someone acknowledged the alert first",
    "idempotency_key_reused": "an Idempotency-Key already used with another body",
    "decision_required": "a symptom alert needs the site's decision",
    "decision_not_applicable": "only symptom alerts take a decision",
    "adverse_event_required": "adverse_event_recorded needs the adverse event's id",
    "adverse_event_not_applicable": "not_adverse_event takes no adverse event",
    "unknown_adverse_event": "no such adverse event of the alert's participant",
    "staff_exists": "a staff account with that e-mail exists",
    "sites_required": "a coordinator needs at least one site",
    "sites_not_allowed": "monitors and admins take no sites",
    "unknown_site": "a site code that does not exist",
    "last_admin": "the last active admin can be neither disabled nor demoted",
    "own_password_reset": "one's own password is changed, not reset",
    "password_unchanged": "the new password equals the current one",
    # The staff console (412 there).
    "stale_version": "a console form opened on an older version: nothing was saved",
}

# Named before `<subject>_<condition>`; kept as they are (contract).
LEGACY: frozenset[str] = frozenset(
    {
        "after_diary_period",
        "bad_request",
        "before_enrolment",
        "conflict",
        "forbidden",
        "forbidden_role",
        "internal_error",
        "invalid_activation_code",
        "invalid_credentials",
        "invalid_refresh_token",
        "invalid_token",
        "last_admin",
        "missing_token",
        "not_found",
        "one_change_at_a_time",
        "too_many_attempts",
        "unauthorized",
        "unknown_adverse_event",
        "unknown_diary_entry",
        "unknown_resource_type",
        "unknown_site",
        "unsupported_media_type",
        "wrong_password",
    }
)
