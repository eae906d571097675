"""Quiet hours at send time: a reminder held back into 22:00-07:00 waits for the morning."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from notifications.rules import ReminderRules, local_instant, out_of_quiet_hours

if TYPE_CHECKING:
    from notifications.claiming import Claimed


def quiet_until(instant: datetime, timezone: str, rules: ReminderRules) -> datetime | None:
    """The end of the quiet hours `instant` falls in, in the participant's `timezone`
    (07:00 local, as a UTC instant); None outside them.

    Planning moves a reminder due inside quiet hours to their end; this catches one that
    reaches its send instant late (the worker was down, FCM kept failing), so that it is
    never sent at night whichever way it got there.
    """
    zone = ZoneInfo(timezone)
    local = instant.astimezone(zone)
    day, at = local.date(), local.time().replace(tzinfo=None)
    moved_day, moved_at = out_of_quiet_hours(day, at, rules)
    if (moved_day, moved_at) == (day, at):
        return None
    return local_instant(moved_day, moved_at, zone)


def hold(
    instant: datetime, expires_at: datetime, timezone: str, rules: ReminderRules
) -> tuple[str, datetime | None] | None:
    """What quiet hours make of a send at `instant`: None to send now; else
    ``("planned", morning)`` to wait, or ``("expired", None)`` when the morning comes at or
    after the reminder's expiry (a diary reminder at 22:58: its day ends at midnight)."""
    morning = quiet_until(instant, timezone, rules)
    if morning is None:
        return None
    if morning >= expires_at:
        return ("expired", None)
    return ("planned", morning)


def split_quiet(
    claimed: list[Claimed], zones: dict[int, str], rules: ReminderRules, now: datetime
) -> tuple[list[Claimed], list[tuple[Claimed, str, datetime | None]]]:
    """The claimed reminders to send at `now`, and those quiet hours hold back, each with
    its new status and next attempt (for `claiming.release`)."""
    send: list[Claimed] = []
    held: list[tuple[Claimed, str, datetime | None]] = []
    for c in claimed:
        fate = hold(now, c.expires_at, zones[c.participant_id], rules)
        if fate is None:
            send.append(c)
        else:
            held.append((c, *fate))
    return send, held
