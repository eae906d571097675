"""Operators' commands of the coordinators' review: `alerts check` and `demo`."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import AppGroup, with_appcontext

from api.clock import utcnow
from api.extensions import db

alerts_cli = AppGroup("alerts", help="Alerts for coordinators.")


def _instant(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter("give an ISO 8601 instant with its offset") from exc
    if moment.tzinfo is None:
        raise click.BadParameter("give the instant's UTC offset, e.g. 2026-03-01T08:00+08:00")
    return moment


@alerts_cli.command("check")
@click.option("--now", "now_text", help="Check as of this ISO 8601 instant (default: now).")
def alerts_check(now_text: str | None) -> None:
    """Raise missed-diary alerts (once per run of missed days); the worker runs this too."""
    from api.services.alerts import check_missed_diaries

    raised = check_missed_diaries(_instant(now_text))
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
