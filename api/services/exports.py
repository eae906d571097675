"""The diary export for statisticians: CSV, streamed row batch by row batch.

The rows come through a server-side cursor (`stream_results`, fetched `yield_per`
rows at a time), are written by the csv module into a small buffer and handed to the
WSGI server as they are made: memory stays flat however many rows there are.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import Engine, Select, String, case, cast, select, tuple_

from api.models import DiaryEntry, Participant, Site

COLUMNS = (
    "study_code",
    "site",
    "arm",
    "diary_date",
    "abdominal_distension",
    "decreased_appetite",
    "debilitation",
    "leg_edema",
    "discomfort_grade",
    "late",
    "source",
    "version",
)
BATCH_ROWS = 2000


def export_query(site_ids: list[int], from_: date | None, to: date | None) -> Select[Any]:
    """The current version of each entry, in (participant, day) order: the index order.

    Dates and the late flag are turned into text by the database, so each row reaches
    the csv module as ready-made values.
    """
    d = DiaryEntry.__table__
    p = Participant.__table__
    s = Site.__table__
    stmt = (
        select(
            p.c.study_code,
            s.c.code,
            p.c.arm,
            cast(d.c.diary_date, String),
            d.c.abdominal_distension,
            d.c.decreased_appetite,
            d.c.debilitation,
            d.c.leg_edema,
            d.c.discomfort_grade,
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
    batches = _streamed if engine.dialect.name == "postgresql" else _keyset_batches
    for rows in batches(stmt, engine):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue()


def _streamed(stmt: Select[Any], engine: Engine) -> Iterator[Any]:
    """PostgreSQL: one query through a server-side cursor, one snapshot for the export."""
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH_ROWS).execute(stmt)
        yield from result.partitions()


def _keyset_batches(stmt: Select[Any], engine: Engine) -> Iterator[Any]:
    """SQLite: batches after the last (participant, day) seen, each in a short read.

    A transaction there takes the database's write lock (see `api._configure_sqlite`),
    so one held open for a whole download would stall every diary submission.
    """
    d = DiaryEntry.__table__
    keyed = stmt.add_columns(d.c.participant_id, d.c.diary_date).limit(BATCH_ROWS)
    after: tuple[int, Any] | None = None
    while True:
        page = keyed
        if after is not None:
            page = page.where(tuple_(d.c.participant_id, d.c.diary_date) > tuple_(*after))
        with engine.connect() as conn:
            rows = conn.execute(page).all()
        if not rows:
            return
        after = (rows[-1][-2], rows[-1][-1])
        yield [row[:-2] for row in rows]
        if len(rows) < BATCH_ROWS:
            return
