"""HTTP resources: one Blueprint per resource, registered on the Api here."""

from __future__ import annotations

from flask import Flask

from api.extensions import api
from api.resources import (
    auth,
    compliance,
    devices,
    diary_entries,
    health,
    me,
    notifications,
    participants,
    reminders,
    sites,
)

API_BLUEPRINTS = (
    auth.blp,
    sites.blp,
    participants.blp,
    me.blp,
    diary_entries.blp,
    compliance.blp,
    devices.blp,
    notifications.blp,
    reminders.blp,
)


def register_resources(app: Flask) -> None:
    app.register_blueprint(health.blp)
    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
