"""Is the database at the migrations this code was written for?

Read at start (migrate only when behind, so a start is quiet otherwise) and by
`/readyz` (a host whose database is behind its code takes no traffic).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config)


def code_heads() -> frozenset[str]:
    """The head revisions of the migration scripts shipped with this code."""
    return frozenset(_scripts().get_heads())


def _known(revision: str) -> bool:
    return revision in {script.revision for script in _scripts().walk_revisions()}


def database_heads(connection: Connection) -> frozenset[str]:
    """The revisions recorded in the database (read directly: Alembic's context logs)."""
    if not inspect(connection).has_table("alembic_version"):
        return frozenset()
    return frozenset(connection.scalars(text("SELECT version_num FROM alembic_version")))


def migrations_behind(connection: Connection) -> bool:
    """True when the database is at an older revision than this code's (or has none yet).

    A database at a revision these scripts do not know is ahead (a newer release migrated
    it while this host still runs): not behind, so an old host keeps serving during a
    rolling upgrade whose migrations are backward compatible.
    """
    current = database_heads(connection)
    if current == code_heads():
        return False
    return not current or all(_known(revision) for revision in current)
