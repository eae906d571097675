"""What every command shares: reading `--now`, refusing a future one, a refusal's one line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import click
from marshmallow import ValidationError

from api.clock import utcnow
from api.errors import DomainError
from api.schemas.base import IN_RANGE_MESSAGE, day_in_range

# A --now this far ahead of the clock is still "now" (a typed-in minute, clock skew).
FUTURE_NOW_SLACK = timedelta(minutes=5)


def parse_instant(value: str | None) -> datetime:
    """An operator's ``--now``: an ISO 8601 instant with its offset (default: now)."""
    if value is None:
        return utcnow()
    hint = "'--now'"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(
            "give an ISO 8601 instant with its offset", param_hint=hint
        ) from exc
    if moment.tzinfo is None:
        raise click.BadParameter(
            "give the instant's UTC offset, e.g. 2026-03-01T08:00+08:00", param_hint=hint
        )
    try:
        day_in_range(moment)  # before the conversion below, which could overflow
    except ValidationError as exc:
        raise click.BadParameter(IN_RANGE_MESSAGE, param_hint=hint) from exc
    return moment.astimezone(UTC)


def refuse_future_now(now: datetime, *, dry_run: bool, force: bool) -> None:
    """A `--now` ahead of the clock writes tomorrow's alerts and reminder results today.

    Refused unless the operator asks only to look (`--dry-run`) or says so (`--force`).
    """
    if dry_run or force or now <= utcnow() + FUTURE_NOW_SLACK:
        return
    raise click.UsageError(
        f"--now {now.isoformat()} is in the future: add --dry-run to see what would happen, "
        "or --force to write it anyway."
    )


def describe_refusal(exc: DomainError) -> str:
    """A domain refusal as one line for the terminal, naming the offending options."""
    if exc.errors:
        return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
    return exc.message


def read_password(password_stdin: bool) -> str:
    if not password_stdin:
        raise click.UsageError("Give --password-stdin and pipe the password in.")
    return sys.stdin.readline().rstrip("\r\n")
