"""`flask notifications run|preview`: the reminder worker and what it will send."""

from __future__ import annotations

import signal
from typing import cast

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from werkzeug.local import LocalProxy

from api.cli.common import parse_instant, refuse_future_now
from api.clock import utcnow
from api.extensions import db

notifications_cli = AppGroup("notifications", help="Push reminders: the worker and a preview.")


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
