"""Operators' commands: `staff`, `alerts check`, `demo`, `audit verify|heads`, `db grant-app-role`.

Each command parses its options, calls a domain function and reports; the rules live in
`api/services/`, `api/chain.py` and `notifications/`. One module per command group,
registered here.
"""

from __future__ import annotations

from flask import Flask

from api.cli.alerts import alerts_check, alerts_cli
from api.cli.audit import audit_cli, audit_heads, audit_verify
from api.cli.common import FUTURE_NOW_SLACK, parse_instant, refuse_future_now
from api.cli.db import db_grant_app_role
from api.cli.demo import demo_command
from api.cli.notifications import notifications_cli, notifications_preview, notifications_run
from api.cli.staff import (
    staff_add,
    staff_cli,
    staff_disable,
    staff_enable,
    staff_list,
    staff_set_password,
    staff_set_role,
)

__all__ = [
    "FUTURE_NOW_SLACK",
    "alerts_check",
    "alerts_cli",
    "audit_cli",
    "audit_heads",
    "audit_verify",
    "db_grant_app_role",
    "demo_command",
    "notifications_cli",
    "notifications_preview",
    "notifications_run",
    "parse_instant",
    "refuse_future_now",
    "register_cli",
    "staff_add",
    "staff_cli",
    "staff_disable",
    "staff_enable",
    "staff_list",
    "staff_set_password",
    "staff_set_role",
]


def register_cli(app: Flask) -> None:
    from flask_migrate.cli import db as migrate_cli

    # Flask-Migrate's `db` group: the role's grants follow `db upgrade`, run by the owner.
    migrate_cli.add_command(db_grant_app_role)

    app.cli.add_command(staff_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(demo_command)
