"""Diary rows made straight in the database, for tests of the coordinators' review."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Flask

from api.extensions import db
from api.models import DiaryEntry, DiaryEntryVersion, Participant


def add_entry(
    app: Flask,
    participant: Participant,
    day: date | str,
    *,
    late: bool = False,
    grade: int = 0,
    scores: tuple[int, int, int, int] = (1, 0, 2, 0),
    source: str = "participant",
) -> int:
    """Store one diary entry (version 1) for `day`; on time = recorded that evening."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    zone = ZoneInfo(participant.timezone)
    recorded = datetime.combine(day, time(21, 0), zone)
    received = recorded + (timedelta(days=2) if late else timedelta(minutes=1))
    values = dict(
        zip(
            ("abdominal_distension", "decreased_appetite", "debilitation", "leg_edema"),
            scores,
            strict=True,
        )
    )
    with app.app_context():
        entry = DiaryEntry(
            participant_id=participant.id,
            diary_date=day,
            client_entry_id=uuid.uuid4(),
            discomfort_grade=grade,
            note=None,
            recorded_at=recorded.astimezone(UTC),
            recorded_offset_minutes=int(recorded.utcoffset().total_seconds() // 60),
            timezone=participant.timezone,
            received_at=received.astimezone(UTC),
            late=late,
            source=source,
            version=1,
            updated_at=received.astimezone(UTC),
            **values,
        )
        db.session.add(entry)
        db.session.flush()
        db.session.add(
            DiaryEntryVersion(
                entry_id=entry.id,
                participant_id=participant.id,
                version=1,
                diary_date=day,
                discomfort_grade=grade,
                recorded_at=entry.recorded_at,
                recorded_offset_minutes=entry.recorded_offset_minutes,
                source=source,
                actor_type="participant",
                actor_id=participant.id,
                at=entry.received_at,
                **values,
            )
        )
        db.session.commit()
        return entry.id


def add_entries(app: Flask, participant: Participant, first: str, last: str, **kw) -> None:
    """One entry a day from `first` to `last` inclusive."""
    day, end = date.fromisoformat(first), date.fromisoformat(last)
    while day <= end:
        add_entry(app, participant, day, **kw)
        day += timedelta(days=1)
