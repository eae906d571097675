"""Chain heads kept outside the database, to catch a rewind of the newest rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from api.chain_hash import CHAINED_TABLES, HEADS, instant
from api.chain_verify import Break

HEADS_FORMAT = 1


def chain_heads_snapshot(connection: Connection, taken_at: datetime) -> dict[str, Any]:
    """Every chain's head as a JSON-ready document, to be stored where the database's
    operators cannot write: a later rewind of the newest rows, head included, passes
    `verify_chains` but not `compare_heads` against this."""
    rows = connection.execute(
        select(HEADS.c.chain_key, HEADS.c.seq, HEADS.c.head_hash).order_by(HEADS.c.chain_key)
    )
    chains = [{"chain": key, "sequence": seq, "hash": head} for key, seq, head in rows]
    return {"format": HEADS_FORMAT, "taken_at": instant(taken_at), "chains": chains}


class HeadsFileError(ValueError):
    """A recorded-heads document that is not what `chain_heads_snapshot` writes."""


def recorded_heads(document: Any) -> dict[str, tuple[int, str]]:
    """{chain: (sequence, hash)} from a snapshot document, checked field by field."""
    if not isinstance(document, dict) or document.get("format") != HEADS_FORMAT:
        raise HeadsFileError(f"not a chain-heads document of format {HEADS_FORMAT}")
    chains = document.get("chains")
    if not isinstance(chains, list):
        raise HeadsFileError("'chains' must be a list")
    recorded: dict[str, tuple[int, str]] = {}
    for number, item in enumerate(chains):
        if not isinstance(item, dict):
            raise HeadsFileError(f"chains[{number}] must be an object")
        key, seq, digest = item.get("chain"), item.get("sequence"), item.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            seq = None
        if not isinstance(key, str) or seq is None or not isinstance(digest, str):
            raise HeadsFileError(f"chains[{number}] needs chain (text), sequence (≥ 0), hash")
        recorded[key] = (seq, digest)
    return recorded


def compare_heads(connection: Connection, recorded: dict[str, tuple[int, str]]) -> list[Break]:
    """What changed since the heads were recorded: a chain gone, shorter, or rewritten.

    A chain that grew is fine, as long as the link recorded then is still there with the
    same hash (the chain may only have been extended after it).
    """
    current = {
        key: (seq, head)
        for key, seq, head in connection.execute(
            select(HEADS.c.chain_key, HEADS.c.seq, HEADS.c.head_hash)
        )
    }
    breaks = []
    for key in sorted(recorded):
        seq, digest = recorded[key]
        found = current.get(key)
        if found is None:
            problem = "the chain is missing (recorded in the heads file)"
            breaks.append(Break(key, "chain_heads", seq, None, problem, digest, None))
        elif found[0] < seq:
            problem = f"the chain is shorter than recorded: it ends at seq {found[0]}"
            breaks.append(Break(key, "chain_heads", seq, None, problem, str(seq), str(found[0])))
        elif seq > 0:
            broken = _recorded_link_changed(connection, key, seq, digest)
            if broken is not None:
                breaks.append(broken)
    return breaks


def _recorded_link_changed(connection: Connection, key: str, seq: int, digest: str) -> Break | None:
    for table in CHAINED_TABLES:
        row = connection.execute(
            select(table.c.id, table.c.row_hash).where(table.c.chain_key == key, table.c.seq == seq)
        ).first()
        if row is not None:
            if row.row_hash == digest:
                return None
            problem = "the recorded link's hash changed"
            return Break(key, table.name, seq, row.id, problem, digest, row.row_hash)
    return Break(key, "chain_heads", seq, None, "the recorded link is missing", digest, None)
