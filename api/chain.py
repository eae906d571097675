"""Tamper evidence: the audit trail and the diary versions are append-only hash chains.

Every new `AuditEvent` and `DiaryEntryVersion` is linked as it is inserted, so each
writer is covered without calling anything. The row gets its chain's key, the next
sequence number, the previous link's hash, and its own hash: SHA-256 over the previous
hash, the sequence number and a digest of its content (canonical JSON of its fields,
table and chain).

Chains are partitioned so concurrent writers do not queue on one head: one chain per
participant (their audit rows and diary versions interleaved, in one order), and one
per entity type for audit rows concerning no participant (``type:staff``, …). The head
of each chain is a `ChainHead` row, locked while a transaction extends that chain:
writers of one participant take turns, other participants never wait.

Where the linking happens: the application always computes the content digest (the
canonical form lives in Python, next to `verify_chains`). On PostgreSQL a BEFORE INSERT
trigger (migration 0004; it runs as the tables' owner since 0008) then locks the head,
numbers and links the row and moves the head, inside the INSERT: no extra round trip
per submission. On SQLite, where a statement costs no round trip and writes are
serialised anyway (``BEGIN IMMEDIATE``), the session does the same in Python: it reads
the heads once per transaction and updates them once per flush.

Rows of these tables are never updated or deleted: the ORM refuses it here, and on
PostgreSQL a trigger (migration 0003) refuses it in the database too, and TRUNCATE
outside a maintenance session (migration 0008). `verify_chains` walks every chain and
reports the first broken link of each; `chain_heads_snapshot` and `compare_heads` let an
operator keep the heads outside the database and catch a rewind of the newest rows.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, UOWTransaction, object_session

from api.models import AuditEvent, ChainHead, DiaryEntryVersion

GENESIS_HASH = "0" * 64
HASH_VERSION = 1
CHAIN_FIELDS = ("id", "chain_key", "seq", "prev_hash", "row_hash")

# The content each row's hash covers, per table. Named, not derived from the model, so a
# column added later does not silently change the hash of rows written before it.
HASHED_FIELDS: dict[str, tuple[str, ...]] = {
    "audit_events": (
        "at",
        "actor_type",
        "actor_id",
        "action",
        "entity_type",
        "entity_id",
        "participant_id",
        "before",
        "after",
        "reason",
    ),
    "diary_entry_versions": (
        "entry_id",
        "participant_id",
        "version",
        "diary_date",
        "abdominal_distension",
        "decreased_appetite",
        "debilitation",
        "leg_edema",
        "discomfort_grade",
        "note",
        "recorded_at",
        "recorded_offset_minutes",
        "source",
        "actor_type",
        "actor_id",
        "at",
        "reason",
    ),
}
CHAINED_MODELS: tuple[type, ...] = (AuditEvent, DiaryEntryVersion)
CHAINED_TABLES: tuple[Table, ...] = tuple(m.__table__ for m in CHAINED_MODELS)  # type: ignore[attr-defined]
HEADS: Table = ChainHead.__table__  # type: ignore[assignment]

_HEADS_KEY = "chain_heads"  # Session.info: {chain_key: (seq, head_hash)} locked in this txn
_DIRTY_KEY = "chain_heads_dirty"  # Session.info: chain keys advanced in the current flush
_LINKED_KEY = "chain_linked"  # Session.info: rows the database linked in the current flush


class AppendOnlyError(RuntimeError):
    """An audit row or a diary version was about to be changed or deleted."""


# --- hashing ---------------------------------------------------------------------------


def chain_key_for(row: Any) -> str:
    """The chain a new row joins: its participant's, else its entity type's."""
    participant_id = getattr(row, "participant_id", None)
    if participant_id is not None:
        return f"participant:{participant_id}"
    return f"type:{row.entity_type}"[:64]


def _json_value(value: Any) -> Any:
    """One JSON form for a value of a JSON column (or anything without a column type)."""
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _instant(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands instants back without their zone: UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _converter(column_type: Any) -> Callable[[Any], Any]:
    """How a column's value is written into the digest, so Python's value before the
    INSERT and the database's value read back later give the same text."""
    column_type = getattr(column_type, "impl_instance", column_type)  # UTCDateTime
    if isinstance(column_type, DateTime):
        return _instant
    if isinstance(column_type, Date):
        return date.isoformat
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, Integer):
        return int
    if isinstance(column_type, String | Text):
        return str
    return _json_value


_CONVERTERS: dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = {}


def _converters(table: Table) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    found = _CONVERTERS.get(table.name)
    if found is None:
        found = tuple((n, _converter(table.c[n].type)) for n in HASHED_FIELDS[table.name])
        _CONVERTERS[table.name] = found
    return found


def content_digest(table: Table, chain_key: str, content: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a row's content, its table and its chain."""
    row = {}
    for name, convert in _converters(table):
        value = content.get(name)
        row[name] = None if value is None else convert(value)
    payload = {"v": HASH_VERSION, "table": table.name, "chain": chain_key, "row": row}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_hash(prev_hash: str, digest: str, seq: int) -> str:
    """A row's hash: its place in the chain and its content (the trigger computes the same)."""
    return hashlib.sha256(f"{prev_hash}:{digest}:{seq}".encode()).hexdigest()


def row_hash(
    table: Table, chain_key: str, seq: int, prev_hash: str, content: dict[str, Any]
) -> str:
    """The hash a row with this content must carry at this place of this chain."""
    return link_hash(prev_hash, content_digest(table, chain_key, content), seq)


# --- linking new rows --------------------------------------------------------------------


def chain_enabled() -> bool:
    """On unless the app says ``AUDIT_CHAIN=False`` (only a benchmark's baseline does)."""
    if has_app_context():
        return bool(current_app.config.get("AUDIT_CHAIN", True))
    return True


def _heads(session: Session) -> dict[str, tuple[int, str]]:
    return session.info.setdefault(_HEADS_KEY, {})


def _lock_heads(session: Session, connection: Connection, keys: list[str]) -> None:
    """Lock and read the heads of `keys` (sorted, so two writers never deadlock)."""
    heads = _heads(session)
    missing = sorted(k for k in set(keys) if k not in heads)
    if not missing:
        return
    found = _select_heads(connection, missing)
    new = [k for k in missing if k not in found]
    if new:
        # A chain's first row: create its head. Two writers racing to create the same
        # head both succeed here (the loser's insert does nothing) and then queue on it.
        insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
        connection.execute(
            insert(HEADS).on_conflict_do_nothing(index_elements=["chain_key"]),
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


def _in_database(connection: Connection) -> bool:
    """PostgreSQL links rows in its trigger; elsewhere the session does it."""
    return connection.dialect.name == "postgresql"


def _before_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Lock every chain this flush will extend, in one sorted batch.

    On PostgreSQL the trigger locks each head as it links a row; a flush extending
    several chains (a batch job) takes their locks here first, in sorted order, so two
    such flushes cannot deadlock.
    """
    if not chain_enabled():
        return
    keys = {chain_key_for(obj) for obj in session.new if isinstance(obj, CHAINED_MODELS)}
    if not keys:
        return
    connection = session.connection()
    if not _in_database(connection):
        _lock_heads(session, connection, sorted(keys))
    elif len(keys) > 1:
        # The owner's function (migration 0008) creates and locks them: the application
        # role may read heads but not write them. The trigger then reads each head itself.
        keys_param = bindparam("keys", sorted(keys), type_=ARRAY(Text))
        connection.execute(select(func.lock_chain_heads(keys_param)))


def _link(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    """Give a row about to be inserted its place in the chain and its hash."""
    session = object_session(target)
    if session is None or not chain_enabled():
        return
    key = chain_key_for(target)
    table: Table = mapper.local_table  # type: ignore[assignment]
    content = {name: getattr(target, name) for name in HASHED_FIELDS[table.name]}
    digest = content_digest(table, key, content)
    if _in_database(connection):
        # The trigger turns the digest into the linked hash and sets seq and prev_hash;
        # this object's copies are reloaded if anyone reads them.
        target.chain_key, target.seq, target.prev_hash, target.row_hash = key, None, None, digest
        session.info.setdefault(_LINKED_KEY, []).append(target)
        return
    heads = _heads(session)
    if key not in heads:  # added during the flush, after before_flush looked
        _lock_heads(session, connection, [key])
    seq, prev = heads[key]
    target.chain_key, target.seq, target.prev_hash = key, seq + 1, prev
    target.row_hash = link_hash(prev, digest, seq + 1)
    heads[key] = (seq + 1, target.row_hash)
    session.info.setdefault(_DIRTY_KEY, set()).add(key)


def _after_flush(session: Session, _context: UOWTransaction) -> None:
    """Move the heads this flush advanced: one UPDATE per chain (sent as one batch)."""
    dirty = session.info.pop(_DIRTY_KEY, None)
    if not dirty:
        return
    heads = _heads(session)
    session.connection().execute(
        update(HEADS)
        .where(HEADS.c.chain_key == bindparam("k"))
        .values(seq=bindparam("s"), head_hash=bindparam("h")),
        [{"k": k, "s": heads[k][0], "h": heads[k][1]} for k in sorted(dirty)],
    )


def _after_flush_postexec(session: Session, _context: UOWTransaction) -> None:
    """Rows the trigger linked: their seq, prev_hash and row_hash are the database's."""
    for target in session.info.pop(_LINKED_KEY, ()):
        if target in session:
            session.expire(target, ["seq", "prev_hash", "row_hash"])


def _forget_heads(session: Session, *_args: Any) -> None:
    """After any rollback (a savepoint's too) the locked heads may be stale: re-read them."""
    session.info.pop(_HEADS_KEY, None)
    session.info.pop(_DIRTY_KEY, None)
    session.info.pop(_LINKED_KEY, None)


def _transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the real transaction: its locks are gone
        _forget_heads(session)


# --- append-only ---------------------------------------------------------------------------


def _refuse_update(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    session = object_session(target)
    if session is not None and not session.is_modified(target, include_collections=False):
        return
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only; changes are refused.")


def _refuse_delete(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only; deletes are refused.")


def _refuse_bulk(state: ORMExecuteState) -> None:
    """`session.execute(update(AuditEvent)…)` bypasses mapper events: refuse it here."""
    if not (state.is_update or state.is_delete):
        return
    mappers = getattr(state, "all_mappers", None) or [state.bind_mapper]
    if any(m is not None and m.class_ in CHAINED_MODELS for m in mappers):
        raise AppendOnlyError("Audit rows and diary versions are append-only.")


_installed = False


def install_chain_events() -> None:
    """Register the listeners once per process (every app shares SQLAlchemy's Session)."""
    global _installed
    if _installed:
        return
    event.listen(Session, "before_flush", _before_flush)
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "after_flush_postexec", _after_flush_postexec)
    event.listen(Session, "after_soft_rollback", _forget_heads)
    event.listen(Session, "after_transaction_end", _transaction_ended)
    event.listen(Session, "do_orm_execute", _refuse_bulk)
    for model in CHAINED_MODELS:
        event.listen(model, "before_insert", _link)
        event.listen(model, "before_update", _refuse_update)
        event.listen(model, "before_delete", _refuse_delete)
    _installed = True


# --- verification ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """The first broken link of a chain."""

    chain_key: str | None
    table: str
    seq: int | None
    row_id: int | None
    problem: str
    expected: str | None = None
    stored: str | None = None

    def describe(self) -> str:
        where = self.table
        if self.seq is not None:
            where += f" seq {self.seq}"
        if self.row_id is not None:
            where += f" (row id {self.row_id})"
        text = f"{where}: {self.problem}"
        if self.expected is not None or self.stored is not None:
            text += f"; expected {self.expected}, stored {self.stored}"
        return text


@dataclass(frozen=True)
class ChainResult:
    chain_key: str
    rows: int
    head_hash: str
    broken: Break | None


@dataclass
class VerifyReport:
    chains: int = 0
    rows: dict[str, int] = field(default_factory=lambda: {t.name: 0 for t in CHAINED_TABLES})
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


def _chain_rows(connection: Connection, table: Table, key: str) -> Iterator[tuple[int, Any]]:
    """One table's rows of a chain in sequence order, streamed (a server-side cursor)."""
    columns = [table.c[n] for n in (*CHAIN_FIELDS, *HASHED_FIELDS[table.name])]
    result = connection.execution_options(yield_per=500).execute(
        select(*columns).where(table.c.chain_key == key).order_by(table.c.seq)
    )
    with result:  # closed when the walk stops early too, while the connection is ours
        for row in result:
            yield (-1 if row.seq is None else row.seq, (table, row))


def verify_chain(connection: Connection, key: str, head_seq: int, head_hash: str) -> ChainResult:
    """Walk one chain (its rows from every table, merged by seq) and stop at the first break."""
    streams = [_chain_rows(connection, t, key) for t in CHAINED_TABLES]
    try:
        return _walk(heapq.merge(*streams, key=lambda item: item[0]), key, head_seq, head_hash)
    finally:
        # Close the cursors now: left to the garbage collector, a server-side cursor would
        # be closed later on a connection that by then serves another request.
        for stream in streams:
            stream.close()


def _walk(merged: Iterator[Any], key: str, head_seq: int, head_hash: str) -> ChainResult:
    expected_seq, prev = 1, GENESIS_HASH
    count = 0
    for _seq, (table, row) in merged:
        count += 1
        broken = _check_link(table, row, key, expected_seq, prev)
        if broken is not None:
            return ChainResult(key, count, head_hash, broken)
        expected_seq, prev = expected_seq + 1, row.row_hash
    last = expected_seq - 1
    if last != head_seq:
        problem = f"the chain ends at seq {last} but its head says {head_seq} (rows missing)"
        broken = Break(key, "chain_heads", head_seq, None, problem, str(head_seq), str(last))
        return ChainResult(key, count, head_hash, broken)
    if prev != head_hash:
        broken = Break(key, "chain_heads", head_seq, None, "head hash differs", prev, head_hash)
        return ChainResult(key, count, head_hash, broken)
    return ChainResult(key, count, head_hash, None)


def _check_link(table: Table, row: Any, key: str, expected_seq: int, prev: str) -> Break | None:
    name = table.name
    if row.seq != expected_seq:
        problem = f"sequence jumps from {expected_seq - 1} to {row.seq} (rows missing)"
        if row.seq is not None and row.seq < expected_seq:
            problem = f"sequence number {row.seq} repeated"
        return Break(key, name, row.seq, row.id, problem, str(expected_seq), str(row.seq))
    if row.prev_hash != prev:
        return Break(key, name, row.seq, row.id, "previous hash differs", prev, row.prev_hash)
    content = {n: getattr(row, n) for n in HASHED_FIELDS[name]}
    recomputed = row_hash(table, key, row.seq, prev, content)
    if recomputed != row.row_hash:
        return Break(key, name, row.seq, row.id, "row hash differs", recomputed, row.row_hash)
    return None


def _unchained(connection: Connection) -> Iterator[Break]:
    """Rows outside any chain: no chain fields, or a chain that has no head."""
    for table in CHAINED_TABLES:
        loose = connection.execute(
            select(func.min(table.c.id), func.count()).where(
                (table.c.chain_key.is_(None)) | (table.c.row_hash.is_(None))
            )
        ).one()
        if loose[1]:
            yield Break(None, table.name, None, loose[0], f"{loose[1]} rows carry no chain link")
        orphans = connection.execute(
            select(table.c.chain_key, func.min(table.c.seq), func.min(table.c.id))
            .where(
                table.c.chain_key.is_not(None),
                table.c.chain_key.not_in(select(HEADS.c.chain_key)),
            )
            .group_by(table.c.chain_key)
            .order_by(table.c.chain_key)
        )
        for key, seq, row_id in orphans:
            yield Break(key, table.name, seq, row_id, "the chain has no head row")


def verify_chains(
    connection: Connection,
    on_chain: Callable[[ChainResult], None] | None = None,
    page_size: int = 500,
) -> VerifyReport:
    """Check every chain; `on_chain` hears each result as it is found (for printing)."""
    report = VerifyReport()
    last_key = ""
    while True:
        page = connection.execute(
            select(HEADS.c.chain_key, HEADS.c.seq, HEADS.c.head_hash)
            .where(HEADS.c.chain_key > last_key)
            .order_by(HEADS.c.chain_key)
            .limit(page_size)
        ).all()
        for key, head_seq, head_hash in page:
            result = verify_chain(connection, key, head_seq, head_hash)
            report.chains += 1
            if result.broken is not None:
                report.breaks.append(result.broken)
            if on_chain is not None:
                on_chain(result)
        if len(page) < page_size:
            break
        last_key = page[-1][0]
    report.breaks.extend(_unchained(connection))
    for table in CHAINED_TABLES:
        report.rows[table.name] = connection.scalar(select(func.count()).select_from(table)) or 0
    return report


# --- heads kept outside the database ---------------------------------------------------------

HEADS_FORMAT = 1


def chain_heads_snapshot(connection: Connection, taken_at: datetime) -> dict[str, Any]:
    """Every chain's head as a JSON-ready document, to be stored where the database's
    operators cannot write: a later rewind of the newest rows, head included, passes
    `verify_chains` but not `compare_heads` against this."""
    rows = connection.execute(
        select(HEADS.c.chain_key, HEADS.c.seq, HEADS.c.head_hash).order_by(HEADS.c.chain_key)
    )
    chains = [{"chain": key, "sequence": seq, "hash": head} for key, seq, head in rows]
    return {"format": HEADS_FORMAT, "taken_at": _instant(taken_at), "chains": chains}


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
        valid_seq = isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0
        if not isinstance(key, str) or not valid_seq or not isinstance(digest, str):
            raise HeadsFileError(f"chains[{number}] needs chain (text), sequence (≥ 0), hash")
        recorded[key] = (seq, digest)  # type: ignore[assignment]
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
