"""The chains' hashing: which fields each row's hash covers and how they are written."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import Boolean, Date, DateTime, Integer, String, Table, Text

from api.models import AuditEvent, Base, ChainHead, DiaryEntryVersion
from api.models.diary import SCORE_FIELDS

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
        *SCORE_FIELDS,
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
CHAINED_MODELS: tuple[type[Base], ...] = (AuditEvent, DiaryEntryVersion)
# Declarative `__table__` is typed as a FromClause; these models map plain tables.
CHAINED_TABLES: tuple[Table, ...] = tuple(cast(Table, m.__table__) for m in CHAINED_MODELS)
HEADS = cast(Table, ChainHead.__table__)


def chain_key_for(row: Any) -> str:
    """The chain a new row joins: its participant's, else its entity type's."""
    participant_id = getattr(row, "participant_id", None)
    if participant_id is not None:
        return f"participant:{participant_id}"
    return f"type:{row.entity_type}"[:64]


def chain_key_for_row(row: dict[str, Any]) -> str:
    """`chain_key_for` of a row given as a dict of column values."""
    participant_id = row.get("participant_id")
    if participant_id is not None:
        return f"participant:{participant_id}"
    return f"type:{row['entity_type']}"[:64]


def _json_value(value: Any) -> Any:
    """One JSON form for a value of a JSON column (or anything without a column type)."""
    if isinstance(value, datetime):
        return instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def instant(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite hands instants back without their zone: UTC
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _converter(column_type: Any) -> Callable[[Any], Any]:
    """How a column's value is written into the digest, so Python's value before the
    INSERT and the database's value read back later give the same text."""
    column_type = getattr(column_type, "impl_instance", column_type)  # UTCDateTime
    if isinstance(column_type, DateTime):
        return instant
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
