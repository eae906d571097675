"""Ids for new diary entries, reserved from the table's own sequence a block at a time.

On PostgreSQL a submit writes the entry, its version 1 and its audit row in one
statement, and the version's and audit row's hashes cover the entry's id: so the id
must be known before that statement. Each process reserves `BLOCK` ids with one
`nextval` query and hands them out one per submit (the pooled-id pattern of Hibernate's
and Entity Framework's HiLo generators): one round trip per `BLOCK` submits instead of
one per submit.

Ids stay unique: every one comes from the sequence, which never gives a value twice.
They are no longer in the order the entries were stored (nothing orders entries by id;
the diary day and `received_at` do), and a process that stops leaves the rest of its
block unused, as a rolled-back insert leaves a gap.

Only setting the sequence back breaks this: a restore, a `setval` below ids already
handed out, the tests' reset of the sequences after each test. Restart the app's
processes after one (the tests call `forget_all`). A submit that meets a reserved id
taken anyway drops its process's block and lets the database pick (`services.diary`).
"""

from __future__ import annotations

import os
import threading
import weakref

from sqlalchemy import Connection, Engine, bindparam, text

BLOCK = 32

_NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence('diary_entries', 'id')) FROM generate_series(1, :count)"
).bindparams(bindparam("count"))

_lock = threading.Lock()
_reserved: weakref.WeakKeyDictionary[Engine, list[int]] = weakref.WeakKeyDictionary()


def next_entry_id(connection: Connection) -> int:
    """An id no diary entry has or will get from anyone else (PostgreSQL only)."""
    engine = connection.engine
    with _lock:
        ids = _reserved.get(engine)
        if ids:
            return ids.pop()
    # Reserved outside the lock: a slow database holds up this request, not the others.
    block: list[int] = sorted(connection.execute(_NEXT_IDS, {"count": BLOCK}).scalars())
    block.reverse()  # popped from the end: smallest first
    mine = block.pop()
    with _lock:
        _reserved.setdefault(engine, []).extend(block)
    return mine


def forget(engine: Engine) -> None:
    """Drop the ids this process holds for `engine` (its sequence was set back)."""
    with _lock:
        _reserved.pop(engine, None)


def forget_all() -> None:
    """Drop every id this process holds, for every database."""
    with _lock:
        _reserved.clear()


def _forget_in_child() -> None:
    """A forked child must not hand out the ids its parent holds: both would use them.
    (Its copy of the lock may be held by a parent thread that no longer exists.)"""
    global _lock
    _lock = threading.Lock()
    _reserved.clear()


os.register_at_fork(after_in_child=_forget_in_child)
