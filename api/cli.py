"""Operators' commands: `staff`, `alerts check`, `demo`, `audit verify|heads`, `db grant-app-role`.

Each command parses its options, calls a domain function and reports; the rules live in
`api/services/`, `api/chain.py` and `notifications/`.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from marshmallow import ValidationError
from sqlalchemy import select
from werkzeug.local import LocalProxy

from api.clock import utcnow
from api.errors import DomainError
from api.extensions import db
from api.schemas.base import IN_RANGE_MESSAGE, day_in_range

staff_cli = AppGroup("staff", help="Manage staff accounts.")
alerts_cli = AppGroup("alerts", help="Alerts for coordinators.")
audit_cli = AppGroup("audit", help="Check the tamper-evident audit trail.")
notifications_cli = AppGroup("notifications", help="Push reminders: the worker and a preview.")


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


@staff_cli.command("add")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["coordinator", "monitor", "admin"]))
@click.option("--site", "sites", multiple=True, help="Site code (repeat for several sites).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_add(email: str, role: str, sites: tuple[str, ...], password_stdin: bool) -> None:
    """Create a staff account (the password is read from standard input)."""
    from api.services.staff import add_staff

    password = _read_password(password_stdin)
    try:
        staff = add_staff(email, role, list(sites), password)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc
    where = ", ".join(staff.site_codes) or "all sites"
    click.echo(f"Added {staff.role} {staff.email} ({where}).")


def _read_password(password_stdin: bool) -> str:
    if not password_stdin:
        raise click.UsageError("Give --password-stdin and pipe the password in.")
    return sys.stdin.readline().rstrip("\r\n")


def _change_staff(change: Callable[[Any, int], object], email: str) -> None:
    """Run one lifecycle change on the account EMAIL and commit; a refusal exits 1."""
    from api.audit import SYSTEM
    from api.services.staff import staff_by_email

    try:
        change(SYSTEM, staff_by_email(email).id)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(_describe(exc)) from exc


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

    password = _read_password(password_stdin)
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


def _describe(exc: DomainError) -> str:
    """A domain refusal as one line for the terminal, naming the offending options."""
    if exc.errors:
        return "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in exc.errors.items())
    return exc.message


@alerts_cli.command("check")
@click.option("--now", "now_text", help="Check as of this ISO 8601 instant (default: now).")
@click.option("--dry-run", is_flag=True, help="Print what would be raised; write nothing.")
@click.option("--force", is_flag=True, help="Allow a future --now without --dry-run.")
def alerts_check(now_text: str | None, dry_run: bool, force: bool) -> None:
    """Raise missed-diary alerts (once per run of missed days); the worker runs this too."""
    from api.services.alerts import check_missed_diaries

    now = parse_instant(now_text)
    refuse_future_now(now, dry_run=dry_run, force=force)
    raised = check_missed_diaries(now)
    if dry_run:
        db.session.rollback()
        click.echo(f"dry run: {raised} missed-diary alert(s) would be raised.")
        return
    db.session.commit()
    click.echo(f"{raised} missed-diary alert(s) raised.")


@click.command("demo")
@click.option("--seed", type=int, default=None, help="Random seed (default: random).")
@with_appcontext
def demo_command(seed: int | None) -> None:
    """Fill an empty database with a small believable trial (refuses if it has participants)."""
    from api.services.demo import DemoRefused, build_demo

    try:
        summary = build_demo(utcnow(), seed=seed)
    except DemoRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(summary.describe())


@audit_cli.command("heads")
def audit_heads() -> None:
    """Print every chain's head (chain, sequence, hash) as JSON, to keep outside the database."""
    from api.chain import chain_heads_snapshot

    with db.engine.connect() as connection:
        document = chain_heads_snapshot(connection, utcnow())
    click.echo(json.dumps(document, indent=1, ensure_ascii=False))


def _load_heads(path: str) -> dict[str, tuple[int, str]]:
    from api.chain import HeadsFileError, recorded_heads

    try:
        with open(path, encoding="utf-8") as handle:
            return recorded_heads(json.load(handle))
    except (OSError, ValueError) as exc:  # HeadsFileError and JSON errors are ValueErrors
        kind = "" if isinstance(exc, HeadsFileError | OSError) else "not JSON: "
        raise click.BadParameter(f"{kind}{exc}", param_hint="--expect-heads") from exc


@audit_cli.command("verify")
@click.option("--quiet", is_flag=True, help="Print only broken chains and the summary.")
@click.option(
    "--expect-heads",
    "heads_path",
    metavar="FILE",
    help="A file written by `audit heads`: also fail if a chain recorded there is now "
    "missing, shorter, or its recorded link changed.",
)
def audit_verify(quiet: bool, heads_path: str | None) -> None:
    """Recompute every chain; print each chain's result and exit 1 if any link is broken."""
    from api.chain import ChainResult, compare_heads, verify_chains

    recorded = _load_heads(heads_path) if heads_path else None

    def show(result: ChainResult) -> None:
        if result.broken is not None:
            click.echo(f"BROKEN {result.chain_key}: {result.broken.describe()}")
        elif not quiet:
            click.echo(f"OK     {result.chain_key}: {result.rows} rows, head {result.head_hash}")

    with db.engine.connect() as connection:
        report = verify_chains(connection, on_chain=show)
        rewound = compare_heads(connection, recorded) if recorded is not None else []
    report.breaks.extend(rewound)
    for broken in report.breaks:
        if broken.chain_key is None or broken.problem == "the chain has no head row":
            click.echo(f"BROKEN {broken.chain_key or '-'}: {broken.describe()}")
    if recorded is not None:
        for broken in rewound:
            click.echo(f"REWOUND {broken.chain_key}: {broken.describe()}")
        click.echo(f"{len(recorded)} recorded heads checked, {len(rewound)} not as recorded.")
    rows = ", ".join(f"{count} {table}" for table, count in report.rows.items())
    summary = f"{report.chains} chains, {rows}"
    if report.ok:
        click.echo(f"{summary}: all links verified.")
        return
    click.echo(f"{summary}: {len(report.breaks)} broken.", err=True)
    raise SystemExit(1)


@notifications_cli.command("run")
@click.option("--once", is_flag=True, help="Run one pass (plan, send what is due) and exit.")
@click.option("--now", "now_text", metavar="ISO8601", help="Run one pass as if at this instant.")
@click.option("--interval", type=float, help="Seconds between passes (WORKER_INTERVAL_SECONDS).")
@click.option("--dry-run", is_flag=True, help="One pass that writes and sends nothing; print it.")
@click.option("--force", is_flag=True, help="Allow a future --now without --dry-run.")
@click.option(
    "--metrics-port", type=click.IntRange(0, 65535), help="Serve Prometheus metrics on this port."
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
def notifications_run(
    once: bool,
    now_text: str | None,
    interval: float | None,
    dry_run: bool,
    force: bool,
    metrics_port: int | None,
    metrics_host: str,
) -> None:
    """Plan and send reminders; also raises missed-diary alerts. SIGTERM stops cleanly."""
    from notifications.worker import Worker

    # Flask types `current_app` as the app; it is the proxy, and the worker needs the app.
    app = cast("LocalProxy[Flask]", current_app)._get_current_object()
    now = parse_instant(now_text) if now_text else None
    if now is not None:
        refuse_future_now(now, dry_run=dry_run, force=force)
    if dry_run:
        from notifications.dry_run import dry_run_pass

        for line in dry_run_pass(now or utcnow()).describe():
            click.echo(line)
        return
    if metrics_port is not None:
        from notifications.metrics import serve_metrics

        serve_metrics(app, metrics_host, metrics_port)
    worker = Worker(app, clock=(lambda: now) if now else None)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if once or now is not None:
        click.echo(worker.run_pass(full_plan=True).describe())
        return
    worker.run(interval)


@notifications_cli.command("preview")
@click.argument("study_code")
@click.option("--days", default=14, show_default=True, type=click.IntRange(1, 400))
@click.option("--now", "now_text", metavar="ISO8601", help="Preview from this instant.")
def notifications_preview(study_code: str, days: int, now_text: str | None) -> None:
    """Show the reminders a participant will receive over the next DAYS days."""
    from api.models import Participant
    from notifications.preview import preview_lines

    participant = db.session.scalar(select(Participant).where(Participant.study_code == study_code))
    if participant is None:
        raise click.ClickException(f"No participant {study_code!r}.")
    for line in preview_lines(participant, parse_instant(now_text), days):
        click.echo(line)


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


def register_cli(app: Flask) -> None:
    from flask_migrate.cli import db as migrate_cli

    # Flask-Migrate's `db` group: the role's grants follow `db upgrade`, run by the owner.
    migrate_cli.add_command(db_grant_app_role)

    app.cli.add_command(staff_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(notifications_cli)
    app.cli.add_command(alerts_cli)
    app.cli.add_command(demo_command)
