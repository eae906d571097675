"""`flask staff`: add, list, disable, enable, set-password, set-role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask.cli import AppGroup

from api.cli.common import describe_refusal, read_password
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

    password = read_password(password_stdin)
    try:
        staff = add_staff(email, role, list(sites), password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(describe_refusal(exc)) from exc
    where = ", ".join(staff.site_codes) or "all sites"
    click.echo(f"Added {staff.role} {staff.email} ({where}).")


def _change_staff(change: Callable[[Any, int], object], email: str) -> None:
    """Run one lifecycle change on the account EMAIL and commit; a refusal exits 1."""
    from api.audit import SYSTEM
    from api.services.staff import staff_by_email

    try:
        change(SYSTEM, staff_by_email(email).id)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(describe_refusal(exc)) from exc


_REASON = click.option("--reason", required=True, help="Why (kept in the audit trail).")


@staff_cli.command("list")
@click.option("--role", type=click.Choice(["coordinator", "monitor", "admin"]))
def staff_list(role: str | None) -> None:
    """List staff accounts: id, e-mail, role, sites, state, last sign-in."""
    from api.services.staff import staff_query

    for staff in db.session.scalars(staff_query(role)):
        state = "active" if staff.is_active else "disabled"
        if staff.must_change_password:
            state += ",must-change-password"
        seen = staff.last_sign_in_at.isoformat(timespec="seconds") if staff.last_sign_in_at else "-"
        sites = ",".join(staff.site_codes) or "all-sites"
        click.echo(f"{staff.id}\t{staff.email}\t{staff.role}\t{sites}\t{state}\t{seen}")


@staff_cli.command("disable")
@click.argument("email")
@_REASON
def staff_disable(email: str, reason: str) -> None:
    """Disable an account; every session of that person ends at once."""
    from api.services.staff import set_active

    _change_staff(lambda actor, sid: set_active(actor, sid, False, reason), email)


@staff_cli.command("enable")
@click.argument("email")
@_REASON
def staff_enable(email: str, reason: str) -> None:
    """Re-enable a disabled account."""
    from api.services.staff import set_active

    _change_staff(lambda actor, sid: set_active(actor, sid, True, reason), email)


@staff_cli.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--no-change-required",
    is_flag=True,
    help="Do not make the person change it at the next sign-in (default: they must).",
)
@_REASON
def staff_set_password(
    email: str, password_stdin: bool, no_change_required: bool, reason: str
) -> None:
    """Reset a password (read from standard input); the person's sessions end."""
    from api.services.staff import reset_password

    password = read_password(password_stdin)
    _change_staff(
        lambda actor, sid: reset_password(
            actor, sid, password, reason, require_change=not no_change_required
        ),
        email,
    )


@staff_cli.command("set-role")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["coordinator", "monitor", "admin"]))
@click.option("--site", "sites", multiple=True, help="Site code (repeat; coordinators only).")
@_REASON
def staff_set_role(email: str, role: str, sites: tuple[str, ...], reason: str) -> None:
    """Change the role and sites (a coordinator keeps its sites unless --site is given)."""
    from api.services.staff import set_role

    _change_staff(lambda actor, sid: set_role(actor, sid, role, list(sites) or None, reason), email)
