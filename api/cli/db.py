"""`flask db grant-app-role`: the service's database role and its privileges."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import with_appcontext

from api.extensions import db


@click.command("grant-app-role")
@click.argument("role")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read a password from standard input and let the role log in with it "
    "(default: a new role is NOLOGIN; the operator gives it a login).",
)
@with_appcontext
def db_grant_app_role(role: str, password_stdin: bool) -> None:
    """Create ROLE if missing and (re)apply the service's privileges (run as the owner).

    Connects with MIGRATION_DATABASE_URL when set, else DATABASE_URL.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from api.db_roles import RoleError, grant_app_role

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    if password_stdin and not password:
        raise click.UsageError("--password-stdin read an empty password.")
    url = current_app.config.get("MIGRATION_DATABASE_URL")
    engine = create_engine(url, poolclass=NullPool) if url else db.engine
    try:
        with engine.begin() as connection:
            report = grant_app_role(connection, role, password)
    except RoleError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if url:
            engine.dispose()
    click.echo(report.describe())
