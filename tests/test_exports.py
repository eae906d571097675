"""The statisticians' CSV export: current versions, site-scoped, streamed in batches."""

from __future__ import annotations

import csv
import io
from datetime import date

from api.extensions import db
from api.models import DiaryEntry
from api.services import exports
from tests.diary_rows import add_entries, add_entry

URL = "/api/v1/exports/diary-entries.csv"


def _rows(response):
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_rows_and_columns(app, factory, clock):
    clock.set("2026-03-01T12:00:00+08:00")
    p = factory.participant(arm="control", enrolled_on=date(2026, 2, 20))
    first_id = add_entry(app, p, "2026-02-20", scores=(1, 2, 3, 4), grade=3)
    entry_id = add_entry(app, p, "2026-02-21", late=True)
    with app.app_context():  # an amendment: the export shows the current version
        entry = db.session.get(DiaryEntry, entry_id)
        entry.leg_edema, entry.version, entry.source = 4, 2, "staff"
        entry.note = 'said "fine", then, 不舒服'
        db.session.commit()
    response = factory.as_(factory.staff("monitor", sites=())).get(URL)
    assert response.is_streamed
    assert response.headers["Content-Disposition"].startswith("attachment")
    rows = _rows(response)
    assert list(rows[0]) == list(exports.COLUMNS)
    assert rows == [
        {
            "entry_id": str(first_id),
            "study_code": p.study_code,
            "site": "BJ302",
            "arm": "control",
            "diary_date": "2026-02-20",
            "abdominal_distension": "1",
            "decreased_appetite": "2",
            "debilitation": "3",
            "leg_edema": "4",
            "discomfort_grade": "3",
            "note": "",
            "recorded_at": "2026-02-20T13:00:00Z",
            "received_at": "2026-02-20T13:01:00Z",
            "timezone": "Asia/Shanghai",
            "late": "false",
            "source": "participant",
            "version": "1",
        },
        {
            "entry_id": str(entry_id),
            "study_code": p.study_code,
            "site": "BJ302",
            "arm": "control",
            "diary_date": "2026-02-21",
            "abdominal_distension": "1",
            "decreased_appetite": "0",
            "debilitation": "2",
            "leg_edema": "4",
            "discomfort_grade": "0",
            "note": 'said "fine", then, 不舒服',
            "recorded_at": "2026-02-21T13:00:00Z",
            "received_at": "2026-02-23T13:00:00Z",
            "timezone": "Asia/Shanghai",
            "late": "true",
            "source": "staff",
            "version": "2",
        },
    ]


def test_export_is_site_scoped_and_filtered_by_days(app, factory, clock, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_ROWS", 3)  # several batches from a few rows
    clock.set("2026-03-01T12:00:00+08:00")
    own = [factory.participant(enrolled_on=date(2026, 2, 20)) for _ in range(2)]
    other = factory.participant(site="LZU1", enrolled_on=date(2026, 2, 20))
    for p in [*own, other]:
        add_entries(app, p, "2026-02-20", "2026-02-26")
    coordinator = factory.as_(factory.staff())
    rows = _rows(coordinator.get(URL))
    assert len(rows) == 14 and {r["site"] for r in rows} == {"BJ302"}
    keys = [(r["study_code"], r["diary_date"]) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == 14
    rows = _rows(coordinator.get(URL, query_string={"from": "2026-02-22", "to": "2026-02-24"}))
    assert sorted({r["diary_date"] for r in rows}) == ["2026-02-22", "2026-02-23", "2026-02-24"]
    assert len(rows) == 6
    assert coordinator.get(URL, query_string={"site": "LZU1"}).status_code == 404
    admin = factory.as_(factory.staff("admin", sites=()))
    assert len(_rows(admin.get(URL, query_string={"site": "LZU1"}))) == 7
    assert len(_rows(admin.get(URL))) == 21
    assert coordinator.get(URL, query_string={"from": "yesterday"}).status_code == 422
    assert factory.as_(own[0]).get(URL).status_code == 403


def test_export_is_documented_as_csv(client):
    doc = client.get("/api/v1/openapi.json").json
    get = doc["paths"][URL]["get"]
    assert "text/csv" in get["responses"]["200"]["content"]
