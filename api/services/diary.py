"""The symptom diary: submit, replay, read (SPEC §2).

The database settles idempotency and "one entry per day": an entry is inserted with
ON CONFLICT DO NOTHING and the unique constraints decide; Python only looks up *why* an
insert was kept out. Every state an entry ever had is an immutable `DiaryEntryVersion` row
(version 1 is the original), written in the same transaction as the entry, its audit
row and any symptom alert. A new entry's version and audit row are Core inserts, linked
into the participant's hash chain: no unit of work. On PostgreSQL a single submit sends
entry, version and audit row as one statement, its id reserved first (`entry_ids`); a
synced queue, and SQLite, insert the entries and then their history (`insert_chained`).

A submit works on rows, not ORM objects: the participant as read at authentication
(`Principal.participant_row`), the entry as its INSERT returned it, a replay's entry as
read by Core. Nothing joins the session, so nothing is expired, flushed or reloaded.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Connection, Row, Select, Table, bindparam, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import selectinload
from sqlalchemy.sql import Executable

from api.audit import Actor, snapshot
from api.chain import digested_for_trigger, insert_chained
from api.chain_locks import chain_enabled
from api.clock import utcnow
from api.errors import Conflict, DomainError, NotFound
from api.extensions import db
from api.models import AuditEvent, DiaryEntry, DiaryEntryVersion
from api.models.diary import SCORE_FIELDS, StoredEntry, utc_offset_minutes
from api.models.participant import ParticipantFacts
from api.services import entry_ids
from api.services.alerts import symptom_alert_for_entry
from api.services.diary_rules import check_active, check_diary_day, day_end, is_late
from api.study import StudyConfig

__all__ = [
    "AUDITED_FIELDS",
    "VALUE_FIELDS",
    "Submission",
    "day_end",
    "is_late",
    "keys_and_days_distinct",
    "submit",
    "submit_many",
]

VALUE_FIELDS = (*SCORE_FIELDS, "note")
AUDITED_FIELDS = ("diary_date", *VALUE_FIELDS, "recorded_at", "late", "source", "version")
# Declarative `__table__` is typed as a FromClause; these models map plain tables.
ENTRIES = cast(Table, DiaryEntry.__table__)
VERSIONS = cast(Table, DiaryEntryVersion.__table__)
AUDIT_EVENTS = cast(Table, AuditEvent.__table__)


@dataclass(frozen=True)
class Submission:
    """The outcome of a submit: the stored entry's row and whether this call created it."""

    entry: StoredEntry
    created: bool


def version_values(
    entry: StoredEntry,
    actor: Actor,
    now: datetime,
    reason: str | None,
    recorded_at: datetime | None = None,
) -> dict[str, Any]:
    """The entry's current values as its newest version (without `entry_id`).

    `recorded_at` is the device time of an amendment (else the entry's own); `source`
    says who made this version, whoever made the entry.
    """
    actor_type, actor_id = actor
    assert actor_id is not None
    offset = entry.recorded_offset_minutes
    if recorded_at is not None:
        offset = utc_offset_minutes(recorded_at)
    return {
        "participant_id": entry.participant_id,
        "version": entry.version,
        "diary_date": entry.diary_date,
        **{name: getattr(entry, name) for name in VALUE_FIELDS},
        "recorded_at": recorded_at or entry.recorded_at,
        "recorded_offset_minutes": offset,
        "source": "staff" if actor_type == "staff" else "participant",
        "actor_type": actor_type,
        "actor_id": actor_id,
        "at": now,
        "reason": reason,
    }


def new_version(
    entry: DiaryEntry,
    actor: Actor,
    now: datetime,
    reason: str | None,
    recorded_at: datetime | None = None,
) -> DiaryEntryVersion:
    """The entry's newest version as an ORM object, joined to the entry's versions."""
    return DiaryEntryVersion(entry=entry, **version_values(entry, actor, now, reason, recorded_at))


def _audit_created(entry: StoredEntry, actor: Actor, reason: str | None) -> dict[str, Any]:
    """The `diary_entry.created` audit row, as `api.audit.record_audit` would write it."""
    return {
        "at": utcnow(),
        "actor_type": actor[0],
        "actor_id": actor[1],
        "action": "diary_entry.created",
        "entity_type": "diary_entry",
        "entity_id": entry.id,
        "participant_id": entry.participant_id,
        "before": None,
        "after": snapshot(entry, AUDITED_FIELDS),
        "reason": reason,
    }


def find(participant_id: int, **by: Any) -> Row[Any] | None:
    """This participant's entry row with the given column values, if there is one."""
    stmt = select(ENTRIES).filter_by(participant_id=participant_id, **by)
    return db.session.connection().execute(stmt).one_or_none()


def _insert_unless_taken(row: dict[str, Any]) -> Row[Any] | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING: the new entry's row, or None when one of
    the unique constraints (participant + day, participant + client key) already holds a row.

    One statement decides, also against a concurrent writer: PostgreSQL makes the second
    insert wait for the first transaction and then skip; SQLite takes the write lock
    first. No savepoint and no exception path are needed.
    """
    return db.session.connection().execute(_insert_statement(), row).one_or_none()


def _insert_all_unless_taken(rows: list[dict[str, Any]]) -> dict[uuid.UUID, Row[Any]]:
    """The same INSERT for many rows (batched into multi-row VALUES by SQLAlchemy's
    "insertmanyvalues"): the new entries' rows by `client_entry_id`; rows kept out are absent."""
    if not rows:
        return {}
    stored = db.session.connection().execute(_insert_statement(), rows).all()
    return {row.client_entry_id: row for row in stored}


def _insert_statement() -> Executable:
    return _INSERT_UNLESS_TAKEN[db.session.get_bind().dialect.name]


# Built once: the row travels as parameters, so each call skips building, coercing and
# cache-keying a statement.
_INSERT_UNLESS_TAKEN = {
    name: insert(ENTRIES).on_conflict_do_nothing().returning(*ENTRIES.c)
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def _replay_or_conflict(
    participant_id: int, client_entry_id: uuid.UUID, diary_date: date
) -> Submission:
    """After the database kept an insert out: the stored twin (replay) or a 409."""
    outcome = _kept_out(participant_id, client_entry_id, diary_date)
    if outcome is None:  # rows are never deleted, so one of the two must exist
        raise RuntimeError("diary entry insert skipped without a conflicting row")
    return outcome


def _kept_out(
    participant_id: int, client_entry_id: uuid.UUID, diary_date: date
) -> Submission | None:
    """The stored twin (replay) or a 409, or None when the participant has neither: then
    only an entry's reserved id can have kept its insert out."""
    stored = find(participant_id, client_entry_id=client_entry_id)
    if stored is not None:
        return Submission(stored, created=False)
    existing = find(participant_id, diary_date=diary_date)
    if existing is None:
        return None
    raise Conflict(
        f"There is already an entry for {diary_date.isoformat()}; amend it instead.",
        error="entry_exists_for_date",
        existing_entry_id=existing.id,
    )


def _entry_row(
    participant: ParticipantFacts, values: dict[str, Any], actor: Actor, now: datetime, late: bool
) -> dict[str, Any]:
    staff = actor[0] == "staff"
    recorded_at: datetime = values.get("recorded_at") or now
    return {
        "participant_id": participant.id,
        "diary_date": values["diary_date"],
        "client_entry_id": values["client_entry_id"],
        **{name: values[name] for name in SCORE_FIELDS},
        "note": values.get("note"),
        "recorded_at": recorded_at,
        "recorded_offset_minutes": utc_offset_minutes(recorded_at),
        "timezone": participant.timezone,
        "received_at": now,
        "late": late,
        "source": "staff" if staff else "participant",
        "created_by_staff_id": actor[1] if staff else None,
        "version": 1,
        "updated_at": now,
    }


def _keyed(values: dict[str, Any]) -> dict[str, Any]:
    """The submitted values with their `client_entry_id` (a new one when none was sent)."""
    return {**values, "client_entry_id": values.get("client_entry_id") or uuid.uuid4()}


def _checked_row(
    participant: ParticipantFacts,
    values: dict[str, Any],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
) -> dict[str, Any]:
    """The entry's row, once the participant and the day pass the rules (else DomainError)."""
    diary_date: date = values["diary_date"]
    check_active(participant)
    check_diary_day(participant, diary_date, now, study, backfill=actor[0] != "staff")
    recorded_at: datetime = values.get("recorded_at") or now
    late = is_late(diary_date, participant.timezone, recorded_at, now, study.clock_skew_minutes)
    return _entry_row(participant, values, actor, now, late)


def _stored_or_refused(
    participant_id: int, client_entry_id: uuid.UUID, refusal: DomainError
) -> Submission:
    """A refused entry whose key is stored is a replay (the rules judged the first send)."""
    stored = find(participant_id, client_entry_id=client_entry_id)
    if stored is None:
        raise refusal
    return Submission(stored, created=False)


def _chain_created(
    entries: list[StoredEntry], actor: Actor, now: datetime, reason: str | None
) -> None:
    """The new entries' version 1 and `diary_entry.created` audit rows: one chained INSERT."""
    insert_chained(
        db.session(),
        (AUDIT_EVENTS, [_audit_created(entry, actor, reason) for entry in entries]),
        (VERSIONS, [{"entry_id": e.id, **version_values(e, actor, now, reason)} for e in entries]),
    )


def _store_created(
    row: dict[str, Any], actor: Actor, now: datetime, reason: str | None
) -> StoredEntry | None:
    """The new entry with its version 1 and audit row, or None when a unique constraint
    kept the entry out (and then nothing else was written)."""
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        return _insert_with_history(connection, row, actor, now, reason)
    return _insert_then_history(row, actor, now, reason)


def _insert_then_history(
    row: dict[str, Any], actor: Actor, now: datetime, reason: str | None
) -> Row[Any] | None:
    """The entry (its id the database's pick), then its version 1 and audit row."""
    entry = _insert_unless_taken(row)
    if entry is not None:
        _chain_created([entry], actor, now, reason)
    return entry


def _store_with_database_id(
    row: dict[str, Any], actor: Actor, now: datetime, reason: str | None
) -> Row[Any] | None:
    """The insert was kept out by its reserved id alone: the sequence was set back under
    this process (a restore, a test's reset). Drop the ids it holds; the database picks.
    None for a row that reserved no id (SQLite), which the caller's lookups settle."""
    if "id" not in row:
        return None
    entry_ids.forget(db.session.connection().engine)
    return _insert_then_history({k: v for k, v in row.items() if k != "id"}, actor, now, reason)


def _insert_with_history(
    connection: Connection, row: dict[str, Any], actor: Actor, now: datetime, reason: str | None
) -> StoredEntry | None:
    """PostgreSQL: the entry (ON CONFLICT DO NOTHING), its version 1 and its audit row in
    one statement, one round trip. Version and audit row are inserted from the entry's
    RETURNING, so an entry kept out takes them with it. Their hashes cover the entry's
    id, so the id is reserved first (`entry_ids`) and set in `row`, not left to the INSERT.

    Every column of the entry is in `row`, so the new entry is `row` itself (as the
    database hands it back: instants in UTC); only its id comes back, saying it was stored.
    """
    row["id"] = entry_ids.next_entry_id(connection)
    stored = _as_stored(row)
    audit = _audit_created(stored, actor, reason)
    version = {"entry_id": row["id"], **version_values(stored, actor, now, reason)}
    if chain_enabled():
        digested_for_trigger(AUDIT_EVENTS, audit)
        digested_for_trigger(VERSIONS, version)
    statement = _with_history_statement(tuple(row), tuple(audit), tuple(version))
    params = {f"e_{name}": value for name, value in row.items()}
    params.update((f"a_{k}", v) for k, v in audit.items() if k not in _AUDIT_FROM_ENTRY)
    params.update((f"v_{k}", v) for k, v in version.items() if k not in _VERSION_FROM_ENTRY)
    stored_id = connection.execute(statement, params).scalar_one_or_none()
    return None if stored_id is None else stored


# The columns of version 1 and of its audit row that are the entry's own, taken from the
# entry's RETURNING (their values are the same, and each one less is a parameter less:
# psycopg caches the conversion of a statement of at most 50 parameters and 4 kB).
_AUDIT_FROM_ENTRY = {"entity_id": "id", "participant_id": "participant_id"}
_VERSION_FROM_ENTRY = {
    "entry_id": "id",
    **{name: name for name in ("participant_id", "version", "diary_date", *VALUE_FIELDS)},
    **{name: name for name in ("recorded_at", "recorded_offset_minutes")},
}


def _as_stored(row: dict[str, Any]) -> StoredEntry:
    """The entry's row as the database hands it back (instants in UTC), by attribute."""
    return SimpleNamespace(
        **{k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}
    )


@functools.cache
def _with_history_statement(
    entry_columns: tuple[str, ...], audit_columns: tuple[str, ...], version_columns: tuple[str, ...]
) -> Select[Any]:
    """WITH entry AS (INSERT … ON CONFLICT DO NOTHING RETURNING *), audit AS (INSERT …
    SELECT … FROM entry), version AS (INSERT … SELECT … FROM entry) SELECT entry.id FROM
    entry: the id when the entry was stored, no row when a unique constraint kept it out.

    Built once per shape. Values are parameters (prefixed e_, a_, v_ by table; the
    psycopg dialect casts each to its column's type), except the columns the history
    takes from the entry.
    """
    entry = (
        pg_insert(ENTRIES)
        .values({c: bindparam(f"e_{c}", type_=ENTRIES.c[c].type) for c in entry_columns})
        .on_conflict_do_nothing()
        .returning(*ENTRIES.c)
        .cte("entry")
    )

    def from_entry(table: Table, prefix: str, columns: tuple[str, ...], own: dict[str, str]) -> Any:
        values = [
            entry.c[own[name]]
            if name in own
            else bindparam(f"{prefix}_{name}", type_=table.c[name].type)
            for name in columns
        ]
        return insert(table).from_select(list(columns), select(*values).select_from(entry))

    audit = from_entry(AUDIT_EVENTS, "a", audit_columns, _AUDIT_FROM_ENTRY).cte("audit")
    version = from_entry(VERSIONS, "v", version_columns, _VERSION_FROM_ENTRY).cte("version")
    return select(entry.c.id).add_cte(audit, version)


def submit(
    participant: ParticipantFacts,
    values: dict[str, Any],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
    *,
    reason: str | None = None,
) -> Submission:
    """Create the entry for a diary day, or return the stored one for a replayed key.

    A replay returns the stored entry even when the resent values differ (the first
    submission is the record; a change is an amendment). A replay is recognised before
    the day rules, so a retry that arrives after the backfill window moved on, or after
    the participant was withdrawn, still gets its stored entry back rather than an error.
    """
    values = _keyed(values)
    try:
        row = _checked_row(participant, values, actor, now, study)
    except DomainError as refusal:
        return _stored_or_refused(participant.id, values["client_entry_id"], refusal)
    key, day = values["client_entry_id"], values["diary_date"]
    entry = _store_created(row, actor, now, reason)
    if entry is None:
        outcome = _kept_out(participant.id, key, day)
        if outcome is not None:
            return outcome
        entry = _store_with_database_id(row, actor, now, reason)
        if entry is None:  # its twin came in meanwhile, or nothing explains the refusal
            return _replay_or_conflict(participant.id, key, day)
    symptom_alert_for_entry(entry, participant, now)
    return Submission(entry, created=True)


def keys_and_days_distinct(queue: list[dict[str, Any]]) -> bool:
    """No two entries of the queue share a `client_entry_id` or a diary day.

    Only then can `submit_many` store the queue in one go: entries that share neither
    cannot decide each other's outcome, so all at once answers what one after another
    would. (A queue holding the same entry twice, or two entries for one day, is stored
    one at a time, where each sees the ones before it.)
    """
    keys = [values["client_entry_id"] for values in queue if values.get("client_entry_id")]
    days = [values["diary_date"] for values in queue]
    return len(set(keys)) == len(keys) and len(set(days)) == len(days)


def submit_many(
    participant: ParticipantFacts,
    queue: list[dict[str, Any]],
    actor: Actor,
    now: datetime,
    study: StudyConfig,
) -> list[Submission | DomainError]:
    """`submit` for each entry of a queue whose keys and days are distinct, in one go.

    Each entry gets the outcome `submit` one after another would give it (a Submission,
    or the DomainError it would raise), in the caller's one transaction: one INSERT for
    the entries and one per table for their versions and audit rows, instead of a
    statement and a commit each. This is what makes a phone's offline queue cheap to store.
    """
    assert keys_and_days_distinct(queue), "a queue sharing keys or days goes one at a time"
    queue = [_keyed(values) for values in queue]
    rows: dict[int, dict[str, Any]] = {}
    refusals: dict[int, DomainError] = {}
    for index, values in enumerate(queue):
        try:
            rows[index] = _checked_row(participant, values, actor, now, study)
        except DomainError as refusal:
            refusals[index] = refusal
    stored = _insert_all_unless_taken(list(rows.values()))
    outcomes = [
        _queued_outcome(participant.id, values, stored, refusals.get(index))
        for index, values in enumerate(queue)
    ]
    created = [o.entry for o in outcomes if isinstance(o, Submission) and o.created]
    if created:
        _chain_created(created, actor, now, None)
    for entry in created:
        symptom_alert_for_entry(entry, participant, now)
    return outcomes


def _queued_outcome(
    participant_id: int,
    values: dict[str, Any],
    stored: dict[uuid.UUID, Row[Any]],
    refusal: DomainError | None,
) -> Submission | DomainError:
    """One queued entry's outcome once the queue's INSERT ran: created when its row went
    in; else, as `submit` decides, a replay of its stored key, or the refusal or 409."""
    key = values["client_entry_id"]
    try:
        if refusal is not None:
            return _stored_or_refused(participant_id, key, refusal)
        if key in stored:
            return Submission(stored[key], created=True)
        return _replay_or_conflict(participant_id, key, values["diary_date"])
    except DomainError as outcome:
        return outcome


def entry_of(participant_id: int, entry_id: int, *, with_versions: bool = False) -> DiaryEntry:
    """One entry of this participant; another participant's is 404, never 403."""
    options = [selectinload(DiaryEntry.versions)] if with_versions else []
    entry = db.session.get(DiaryEntry, entry_id, options=options)
    if entry is None or entry.participant_id != participant_id:
        raise NotFound("No such diary entry.", error="entry_not_found")
    return entry


def entries_of(
    participant_id: int,
    from_: date | None = None,
    to: date | None = None,
    *,
    with_versions: bool = False,
) -> Select[DiaryEntry]:
    """A participant's entries, newest diary day first, within inclusive `from`/`to`."""
    stmt = select(DiaryEntry).where(DiaryEntry.participant_id == participant_id)
    if with_versions:
        stmt = stmt.options(selectinload(DiaryEntry.versions))
    if from_ is not None:
        stmt = stmt.where(DiaryEntry.diary_date >= from_)
    if to is not None:
        stmt = stmt.where(DiaryEntry.diary_date <= to)
    return stmt.order_by(DiaryEntry.diary_date.desc())


def etag_data(entry: StoredEntry) -> dict[str, int]:
    """What an entry's ETag is computed from: the same in every answer that shows it."""
    return {"id": entry.id, "version": entry.version}
