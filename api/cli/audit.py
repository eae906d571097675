"""`flask audit heads|verify`: the tamper-evident trail, checked from outside."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from api.clock import utcnow
from api.extensions import db

audit_cli = AppGroup("audit", help="Check the tamper-evident audit trail.")


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
