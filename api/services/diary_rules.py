"""The diary's day rules: when a day ends, what is late, which days take an entry."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from api.errors import Conflict
from api.models import DiaryEntry, Participant
from api.models.participant import ACTIVE, ParticipantFacts
from api.services.participants import local_today
from api.services.rules import Refused
from api.services.schedule import add_months
from api.study import StudyConfig


def day_end(diary_date: date, zone: str) -> datetime:
    """The instant a diary day ends: the next local midnight in `zone`, DST included.

    Where midnight itself is skipped by a DST jump, zoneinfo's fold=0 maps it to the
    instant of the jump, which is when the day ended.
    """
    return datetime.combine(diary_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(zone))


def is_late(
    diary_date: date, zone: str, recorded_at: datetime, received_at: datetime, skew_minutes: int
) -> bool:
    """Late = completed after its day ended. The device's clock is believed only when it
    does not claim a time after the server received the entry (plus the allowed skew)."""
    skew = timedelta(minutes=skew_minutes)
    completed = recorded_at if recorded_at <= received_at + skew else received_at
    return completed >= day_end(diary_date, zone)


def check_active(participant: ParticipantFacts) -> None:
    """Withdrawn, completed or deceased participants keep no diary."""
    if participant.status != ACTIVE:
        raise Refused(
            "participant",
            f"The participant is {participant.status}; the diary is closed.",
            error="participant_inactive",
        )


def check_diary_day(
    participant: ParticipantFacts,
    diary_date: date,
    now: datetime,
    study: StudyConfig,
    *,
    backfill: bool,
) -> None:
    """Refuse days the participant cannot have an entry for, each with its own code."""
    today = local_today(participant, now)
    if diary_date > today:
        raise Refused(
            "diary_date", "The diary day has not begun yet.", error="diary_date_in_future"
        )
    if diary_date < participant.enrolled_on:
        raise Refused(
            "diary_date",
            f"The diary starts on the enrolment day, {participant.enrolled_on.isoformat()}.",
            error="diary_date_before_enrolment",
        )
    if diary_date > add_months(participant.enrolled_on, study.diary_months):
        raise Refused(
            "diary_date", "The diary period of the study has ended.", error="diary_period_ended"
        )
    oldest = today - timedelta(days=study.backfill_days)
    if backfill and diary_date < oldest:
        raise Refused(
            "diary_date",
            f"Entries can be made for today and the {study.backfill_days} previous days only; "
            "ask your site to record older days.",
            error="backfill_window_closed",
        )


def check_participant_may_amend(entry: DiaryEntry, participant: Participant, now: datetime) -> None:
    """A participant corrects a mis-tap only while the entry's diary day lasts."""
    check_active(participant)
    if now >= day_end(entry.diary_date, entry.timezone):
        raise Conflict(
            "This diary day has ended; ask your site to correct the entry.",
            error="entry_locked",
        )
