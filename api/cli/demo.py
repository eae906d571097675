"""`flask demo`: a believable trial in an empty database."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from api.clock import utcnow
from api.extensions import db


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
