"""Checking the chains: walk every chain and report the first broken link of each."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, func, select

from api.chain_hash import (
    CHAIN_FIELDS,
    CHAINED_TABLES,
    GENESIS_HASH,
    HASHED_FIELDS,
    HEADS,
    row_hash,
)


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


def _chain_rows(
    connection: Connection, table: Table, key: str
) -> Generator[tuple[int, Any], None, None]:
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
