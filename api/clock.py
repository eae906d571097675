"""The one place the service reads the time, so tests can choose the instant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import current_app, has_app_context

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def utcnow() -> datetime:
    """Now, as an aware UTC datetime; the app's ``CLOCK`` setting overrides it in tests."""
    if has_app_context():
        clock: Clock = current_app.config.get("CLOCK") or system_clock
        return clock()
    return system_clock()


@contextmanager
def installed_clock(clock: Clock) -> Iterator[Clock]:
    """Make `clock` the current app's clock for a block (the demo writes months of history
    at chosen instants), then put the previous one back."""
    config = current_app.config
    saved = config.get("CLOCK")
    config["CLOCK"] = clock
    try:
        yield clock
    finally:
        config["CLOCK"] = saved
