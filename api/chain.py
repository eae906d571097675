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
canonical form lives in Python, in `chain_hash`, which `verify_chains` uses too). On
PostgreSQL a BEFORE INSERT trigger (migration 0004; it runs as the tables' owner since
0008) then locks the head,
numbers and links the row and moves the head, inside the INSERT: no extra round trip
per submission. On SQLite, where a statement costs no round trip and writes are
serialised anyway (``BEGIN IMMEDIATE``), the session does the same in Python: it reads
the heads once per transaction and updates them once per flush. Rows written with Core
(`insert_chained`; `digested_for_trigger` for a diary submit's one statement on
PostgreSQL) are linked the same way, without a flush.

Rows of these tables are never updated or deleted: the ORM refuses it (`chain_guards`),
and on PostgreSQL a trigger (migration 0003) refuses it in the database too, and TRUNCATE
outside a maintenance session (migration 0008). `verify_chains` walks every chain and
reports the first broken link of each; `chain_heads_snapshot` and `compare_heads` let an
operator keep the heads outside the database and catch a rewind of the newest rows.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, bindparam, event, insert
from sqlalchemy.orm import Mapper, Session, UOWTransaction, object_session

from api.chain_guards import AppendOnlyError, refuse_bulk, refuse_delete, refuse_update
from api.chain_hash import (
    CHAIN_FIELDS,
    CHAINED_MODELS,
    CHAINED_TABLES,
    GENESIS_HASH,
    HASHED_FIELDS,
    chain_key_for,
    chain_key_for_row,
    content_digest,
    link_hash,
    row_hash,
)
from api.chain_heads import HeadsFileError, chain_heads_snapshot, compare_heads, recorded_heads
from api.chain_locks import (
    HEADS_KEY,
    chain_enabled,
    heads_of,
    in_database,
    lock_heads,
    lock_in_database,
    move_heads,
)
from api.chain_verify import Break, ChainResult, VerifyReport, verify_chain, verify_chains

__all__ = [
    "CHAINED_MODELS",
    "CHAINED_TABLES",
    "CHAIN_FIELDS",
    "GENESIS_HASH",
    "HASHED_FIELDS",
    "AppendOnlyError",
    "Break",
    "ChainResult",
    "HeadsFileError",
    "VerifyReport",
    "chain_heads_snapshot",
    "compare_heads",
    "content_digest",
    "digested_for_trigger",
    "insert_chained",
    "install_chain_events",
    "link_hash",
    "recorded_heads",
    "row_hash",
    "verify_chain",
    "verify_chains",
]

_DIRTY_KEY = "chain_heads_dirty"  # Session.info: chain keys advanced in the current flush
_LINKED_KEY = "chain_linked"  # Session.info: rows the database linked in the current flush


# --- linking new rows --------------------------------------------------------------------


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
    if not in_database(connection):
        lock_heads(session, connection, sorted(keys))
    elif len(keys) > 1:
        lock_in_database(connection, keys)


def _link(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    """Give a row about to be inserted its place in the chain and its hash."""
    session = object_session(target)
    if session is None or not chain_enabled():
        return
    key = chain_key_for(target)
    table = cast(Table, mapper.local_table)  # every chained model maps a plain table
    content = {name: getattr(target, name) for name in HASHED_FIELDS[table.name]}
    digest = content_digest(table, key, content)
    if in_database(connection):
        # The trigger turns the digest into the linked hash and sets seq and prev_hash;
        # this object's copies are reloaded if anyone reads them.
        target.chain_key, target.seq, target.prev_hash, target.row_hash = key, None, None, digest
        session.info.setdefault(_LINKED_KEY, []).append(target)
        return
    heads = heads_of(session)
    if key not in heads:  # added during the flush, after before_flush looked
        lock_heads(session, connection, [key])
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
    move_heads(session.connection(), heads_of(session), dirty)


def _after_flush_postexec(session: Session, _context: UOWTransaction) -> None:
    """Rows the trigger linked: their seq, prev_hash and row_hash are the database's."""
    for target in session.info.pop(_LINKED_KEY, ()):
        if target in session:
            session.expire(target, ["seq", "prev_hash", "row_hash"])


def _forget_heads(session: Session, *_args: Any) -> None:
    """After any rollback (a savepoint's too) the locked heads may be stale: re-read them."""
    session.info.pop(HEADS_KEY, None)
    session.info.pop(_DIRTY_KEY, None)
    session.info.pop(_LINKED_KEY, None)


def _transaction_ended(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the real transaction: its locks are gone
        _forget_heads(session)


Batch = tuple[Table, list[dict[str, Any]]]


def insert_chained(session: Session, *batches: Batch) -> None:
    """INSERT new rows of chained tables with Core, linked as the ORM path links them.

    No unit of work, no objects. The rows are linked in order. On PostgreSQL the trigger
    numbers and links them: batches of one row each (one new entry's version and audit
    row) go in one statement, the batches before the last as data-modifying CTEs, so one
    round trip; larger batches (a synced queue's) go as one executemany per table, a statement
    compiled once whatever the count, where one VALUES list of them all would be built,
    compiled and parsed anew for every queue. Elsewhere the session links them and moves
    the heads in the same transaction.
    """
    batches = tuple((table, rows) for table, rows in batches if rows)
    if not batches:
        return
    # Core statements on the session's connection: the ORM's execute path (events,
    # ORM compile state) has nothing to add to a plain INSERT.
    connection = session.connection()
    if not chain_enabled():
        for table, rows in batches:
            connection.execute(_insert_of(table), rows)
        return
    keys = {chain_key_for_row(row) for _, rows in batches for row in rows}
    if in_database(connection):
        if len(keys) > 1:
            lock_in_database(connection, keys)
        for table, rows in batches:
            for row in rows:
                digested_for_trigger(table, row)
        if all(len(rows) == 1 for _, rows in batches):
            _one_statement(connection, batches)
        else:
            for table, rows in batches:
                connection.execute(_insert_of(table), rows)
        return
    lock_heads(session, connection, sorted(keys))
    heads = heads_of(session)
    for table, rows in batches:
        for row in rows:
            key = chain_key_for_row(row)
            seq, prev = heads[key]
            digest = link_hash(prev, content_digest(table, key, row), seq + 1)
            row.update(chain_key=key, seq=seq + 1, prev_hash=prev, row_hash=digest)
            heads[key] = (seq + 1, digest)
        connection.execute(_insert_of(table), rows)
    move_heads(connection, heads, keys)


def digested_for_trigger(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """The row, given its chain key and content digest, as PostgreSQL's trigger links it
    (the trigger sets `seq` and `prev_hash` and turns the digest into the linked hash)."""
    key = chain_key_for_row(row)
    row.update(chain_key=key, seq=None, prev_hash=None, row_hash=content_digest(table, key, row))
    return row


def _one_statement(connection: Connection, batches: tuple[Batch, ...]) -> None:
    """Batches of one row each as one INSERT, the last carrying the others as CTEs
    (PostgreSQL runs them all): a statement built once per shape, its values as parameters."""
    shape = tuple((table, tuple(rows[0])) for table, rows in batches)
    params = {f"p{n}_{k}": v for n, (_, rows) in enumerate(batches) for k, v in rows[0].items()}
    connection.execute(_statement_of_shape(shape), params)


@functools.cache
def _statement_of_shape(shape: tuple[tuple[Table, tuple[str, ...]], ...]) -> Insert:
    parts = [
        insert(table).values({c: bindparam(f"p{n}_{c}", type_=table.c[c].type) for c in cols})
        for n, (table, cols) in enumerate(shape)
    ]
    *first, last = parts
    return last.add_cte(*(part.cte(f"chained_{n}") for n, part in enumerate(first)))


@functools.cache
def _insert_of(table: Table) -> Insert:
    """One INSERT per table, built once (its cache key too)."""
    return table.insert()


_installed = False


def install_chain_events(session: Any) -> None:
    """Register the listeners on the app's session factory (Flask-SQLAlchemy's scoped
    session), once: sessions made elsewhere are left alone, and nothing is bound to
    SQLAlchemy's own `Session` class. The mapper events belong to the chained models."""
    global _installed
    if _installed:
        return
    event.listen(session, "before_flush", _before_flush)
    event.listen(session, "after_flush", _after_flush)
    event.listen(session, "after_flush_postexec", _after_flush_postexec)
    event.listen(session, "after_soft_rollback", _forget_heads)
    event.listen(session, "after_transaction_end", _transaction_ended)
    event.listen(session, "do_orm_execute", refuse_bulk)
    for model in CHAINED_MODELS:
        event.listen(model, "before_insert", _link)
        event.listen(model, "before_update", refuse_update)
        event.listen(model, "before_delete", refuse_delete)
    _installed = True
