"""The diary export for statisticians: CSV, streamed row batch by row batch.

The rows come through a server-side cursor (`stream_results`, fetched `yield_per`
rows at a time), are written by the csv module into a small buffer and handed to the
WSGI server as they are made: memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Select, String, case, cast, select, tuple_

from api.models import DiaryEntry, Participant, Site
from api.models.diary import SCORE_FIELDS
from api.services.sqldates import utc_text

COLUMNS = (
    "entry_id",
    "study_code",
    "site",
    "arm",
    "diary_date",
    *SCORE_FIELDS,
    "note",
    "recorded_at",
    "received_at",
    "timezone",
    "late",
    "source",
    "version",
)
BATCH_ROWS = 2000


def export_query(site_ids: list[int], from_: date | None, to: date | None) -> Select[Any]:
    """The current version of each entry, in (participant, day) order: the index order.

    Dates, instants (ISO 8601 UTC) and the late flag are turned into text by the
    database, so each row reaches the csv module as ready-made values.
    """
    d = DiaryEntry.__table__
    p = Participant.__table__
    s = Site.__table__
    stmt = (
        select(
            d.c.id,
            p.c.study_code,
            s.c.code,
            p.c.arm,
            cast(d.c.diary_date, String),
            d.c.abdominal_distension,
            d.c.decreased_appetite,
            d.c.debilitation,
            d.c.leg_edema,
            d.c.discomfort_grade,
            d.c.note,
            utc_text(d.c.recorded_at),
            utc_text(d.c.received_at),
            d.c.timezone,
            case((d.c.late.is_(True), "true"), else_="false"),
            d.c.source,
            d.c.version,
        )
        .select_from(d.join(p, p.c.id == d.c.participant_id).join(s, s.c.id == p.c.site_id))
        .where(p.c.site_id.in_(site_ids))
        .order_by(d.c.participant_id, d.c.diary_date)
    )
    if from_:
        stmt = stmt.where(d.c.diary_date >= from_)
    if to:
        stmt = stmt.where(d.c.diary_date <= to)
    return stmt


def stream_csv(stmt: Select[Any], engine: Engine) -> Iterator[str]:
    """Yield the header, then one chunk of CSV text per batch of rows.

    Needs no application context (the engine is given), so the WSGI server may run it
    after the view has returned, and dropping it half-read just closes its connection.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    d = DiaryEntry.__table__
    keys = (d.c.participant_id, d.c.diary_date)
    for rows in row_batches(stmt, engine, keys):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue()


def utc_iso(value: datetime | str | None) -> str:
    """An instant as ISO 8601 UTC (`…Z`), whichever database and driver read it.

    Core statements bypass the ORM type's result processing on some paths, so a SQLite
    text value or a naive datetime (SQLite keeps UTC without a zone) is accepted too.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def row_batches(stmt: Select[Any], engine: Engine, keys: tuple[Any, ...]) -> Iterator[Any]:
    """The rows of `stmt` (ordered by `keys`, which are unique together) in batches.

    Every export reads through here, so each keeps memory flat the same way.
    """
    if engine.dialect.name == "postgresql":
        return _streamed(stmt, engine)
    return _keyset_batches(stmt, engine, keys)


def _streamed(stmt: Select[Any], engine: Engine) -> Iterator[Any]:
    """PostgreSQL: one query through a server-side cursor, one snapshot for the export."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(stmt)
        yield from result.partitions()


def _keyset_batches(stmt: Select[Any], engine: Engine, keys: tuple[Any, ...]) -> Iterator[Any]:
    """SQLite: batches after the last key seen, each in a short read.

    The stream runs after its request, so its transactions take the write lock (see
    `api.sqlite`): one held open for a whole download would stall every diary submission.
    """
    width = len(keys)
    keyed = stmt.add_columns(*keys).limit(BATCH_ROWS)
    after: tuple[Any, ...] | None = None
    while True:
        page = keyed
        if after is not None:
            page = page.where(tuple_(*keys) > tuple_(*after))
        with engine.connect() as conn:
            rows = conn.execute(page).all()
        if not rows:
            return
        after = tuple(rows[-1][-width:])
        yield [row[:-width] for row in rows]
        if len(rows) < BATCH_ROWS:
            return
