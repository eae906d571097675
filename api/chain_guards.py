"""Append-only: audit rows and diary versions are never changed or deleted by the ORM."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.orm import Mapper, ORMExecuteState, object_session

from api.chain_hash import CHAINED_MODELS


class AppendOnlyError(RuntimeError):
    """An audit row or a diary version was about to be changed or deleted."""


def refuse_update(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    session = object_session(target)
    if session is not None and not session.is_modified(target, include_collections=False):
        return
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only; changes are refused.")


def refuse_delete(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
    raise AppendOnlyError(f"{type(target).__name__} rows are append-only; deletes are refused.")


def refuse_bulk(state: ORMExecuteState) -> None:
    """`session.execute(update(AuditEvent)…)` bypasses mapper events: refuse it here."""
    if not (state.is_update or state.is_delete):
        return
    mappers = getattr(state, "all_mappers", None) or [state.bind_mapper]
    if any(m is not None and m.class_ in CHAINED_MODELS for m in mappers):
        raise AppendOnlyError("Audit rows and diary versions are append-only.")
