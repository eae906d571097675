"""`flask --app wsgi audit verify`: check the hash chains of the audit trail and diary versions."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from api.chain import ChainResult, verify_chains
from api.extensions import db

audit_cli = AppGroup("audit", help="Check the tamper-evident audit trail.")


@audit_cli.command("verify")
@click.option("--quiet", is_flag=True, help="Print only broken chains and the summary.")
def audit_verify(quiet: bool) -> None:
    """Recompute every chain; print each chain's result and exit 1 if any link is broken."""

    def show(result: ChainResult) -> None:
        if result.broken is not None:
            click.echo(f"BROKEN {result.chain_key}: {result.broken.describe()}")
        elif not quiet:
            click.echo(f"OK     {result.chain_key}: {result.rows} rows, head {result.head_hash}")

    with db.engine.connect() as connection:
        report = verify_chains(connection, on_chain=show)
    for broken in report.breaks:
        if broken.chain_key is None or broken.problem == "the chain has no head row":
            click.echo(f"BROKEN {broken.chain_key or '-'}: {broken.describe()}")
    rows = ", ".join(f"{count} {table}" for table, count in report.rows.items())
    summary = f"{report.chains} chains, {rows}"
    if report.ok:
        click.echo(f"{summary}: all links verified.")
        return
    click.echo(f"{summary}: {len(report.breaks)} broken.", err=True)
    raise SystemExit(1)
