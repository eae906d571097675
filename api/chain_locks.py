"""Chain heads held by a transaction: locked, read once, and moved as rows are linked."""

from __future__ import annotations

from flask import has_app_context
from sqlalchemy import Connection, Text, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from api.chain_hash import GENESIS_HASH, HEADS
from api.settings import settings

HEADS_KEY = "chain_heads"  # Session.info: {chain_key: (seq, head_hash)} locked in this txn


def chain_enabled() -> bool:
    """On unless the app says ``AUDIT_CHAIN=False`` (only a benchmark's baseline does)."""
    if has_app_context():
        return settings().audit_chain
    return True


def heads_of(session: Session) -> dict[str, tuple[int, str]]:
    heads: dict[str, tuple[int, str]] = session.info.setdefault(HEADS_KEY, {})
    return heads


def lock_heads(session: Session, connection: Connection, keys: list[str]) -> None:
    """Lock and read the heads of `keys` (sorted, so two writers never deadlock)."""
    heads = heads_of(session)
    missing = sorted(k for k in set(keys) if k not in heads)
    if not missing:
        return
    found = _select_heads(connection, missing)
    new = [k for k in missing if k not in found]
    if new:
        # A chain's first row: create its head. Two writers racing to create the same
        # head both succeed here (the loser's insert does nothing) and then queue on it.
        dialect_insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            dialect_insert(HEADS).on_conflict_do_nothing(index_elements=["chain_key"]),
            [{"chain_key": k, "seq": 0, "head_hash": GENESIS_HASH} for k in new],
        )
        found.update(_select_heads(connection, new))
    heads.update(found)


def _select_heads(connection: Connection, keys: list[str]) -> dict[str, tuple[int, str]]:
    rows = connection.execute(
        select(HEADS.c.chain_key, HEADS.c.seq, HEADS.c.head_hash)
        .where(HEADS.c.chain_key.in_(keys))
        .order_by(HEADS.c.chain_key)
        .with_for_update()
    )
    return {key: (seq, head) for key, seq, head in rows}


def in_database(connection: Connection) -> bool:
    """PostgreSQL links rows in its trigger; elsewhere the session does it."""
    return connection.dialect.name == "postgresql"


def lock_in_database(connection: Connection, keys: set[str]) -> None:
    """Lock several heads in sorted order before the trigger extends their chains.

    The owner's function (migration 0008) creates and locks them: the application role
    may read heads but not write them. The trigger then reads each head itself.
    """
    keys_param = bindparam("keys", sorted(keys), type_=ARRAY(Text))
    connection.execute(select(func.lock_chain_heads(keys_param)))


def move_heads(connection: Connection, heads: dict[str, tuple[int, str]], keys: set[str]) -> None:
    connection.execute(
        update(HEADS)
        .where(HEADS.c.chain_key == bindparam("k"))
        .values(seq=bindparam("s"), head_hash=bindparam("h")),
        [{"k": k, "s": heads[k][0], "h": heads[k][1]} for k in sorted(keys)],
    )
