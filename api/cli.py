"""Operators' commands: `flask --app wsgi staff add …`, `demo`, `alerts check`, …"""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from api.errors import DomainError
from api.extensions import db

staff_cli = AppGroup("staff", help="Manage staff accounts.")


@staff_cli.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["coordinator", "monitor", "admin"]))
@click.option("--site", "sites", multiple=True, help="Site code (repeat for several sites).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_add(email: str, role: str, sites: tuple[str, ...], password_stdin: bool) -> None:
    """Create a staff account (the password is read from standard input)."""
    from api.services.staff import add_staff

    if not password_stdin:
        raise click.UsageError("Give --password-stdin and pipe the password in.")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        staff = add_staff(email, role, list(sites), password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc
    where = ", ".join(staff.site_codes) or "all sites"
    click.echo(f"Added {staff.role} {staff.email} ({where}).")


def _describe(exc: DomainError) -> str:
    """A domain refusal as one line for the terminal, naming the offending options."""
    if exc.errors:
        return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
    return exc.message


def register_cli(app: Flask) -> None:
    from api.audit_cli import audit_cli
    from api.review_cli import alerts_cli, demo_command
    from notifications.cli import notifications_cli

    app.cli.add_command(staff_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(demo_command)
