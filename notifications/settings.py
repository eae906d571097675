"""The reminder settings planning needs, read from the app once and passed down as values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from notifications.rules import ReminderRules


@dataclass(frozen=True)
class PlanSettings:
    """The study's reminder rules and the planner's configuration (REMINDER_PLAN_*)."""

    rules: ReminderRules
    plan_ahead: timedelta
    chunk_size: int

    @property
    def max_offset(self) -> timedelta:
        """The farthest an event reminder comes before its event."""
        return timedelta(days=max(self.rules.event_offsets_days, default=0))

    @classmethod
    def from_app(cls, app: Any) -> PlanSettings:
        return cls(
            rules=ReminderRules.from_study(app.extensions["study"]),
            plan_ahead=timedelta(hours=float(app.config["REMINDER_PLAN_AHEAD_HOURS"])),
            chunk_size=int(app.config["REMINDER_PLAN_CHUNK"]),
        )

    @classmethod
    def current(cls) -> PlanSettings:
        """The settings of the app in context: the one place planning reads Flask's app."""
        from flask import current_app

        return cls.from_app(current_app)
