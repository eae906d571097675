"""HTTP resources: one Blueprint per resource, registered on the Api here."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_smorest import Api

from api.resources import (
    adverse_events,
    alerts,
    auth,
    compliance,
    devices,
    diary_entries,
    docs,
    exports,
    health,
    me,
    notifications,
    own_password,
    participants,
    reminders,
    reports,
    schedule,
    sites,
    staff,
)

API_BLUEPRINTS = (
    auth.blp,
    sites.blp,
    participants.blp,
    me.blp,
    diary_entries.blp,
    compliance.blp,
    schedule.blp,
    alerts.blp,
    adverse_events.blp,
    exports.blp,
    devices.blp,
    notifications.blp,
    reminders.blp,
    staff.blp,
    own_password.blp,
    reports.blp,
)


def register_resources(app: Flask, api: Api, limiter: Limiter) -> None:
    """Register the blueprints on this app's `api`, then bind their limits to `limiter`."""
    app.register_blueprint(health.blp)
    app.register_blueprint(docs.blp)
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
    auth.limit_activation(app, limiter)
