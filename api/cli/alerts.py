"""`flask alerts check`: raise missed-diary alerts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from api.cli.common import parse_instant, refuse_future_now
from api.extensions import db

alerts_cli = AppGroup("alerts", help="Alerts for coordinators.")


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
