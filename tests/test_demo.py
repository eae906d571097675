"""`flask --app wsgi demo`: a believable trial seen from any site, and only in an empty database."""

from __future__ import annotations

import io
import logging
import re
import zipfile
from datetime import date, datetime, timedelta

import pytest
from lxml import etree
from sqlalchemy import func, select

from api.extensions import db
from api.models import Participant, Reminder
from api.services import fhir
from tests.helpers import ApiClient, Factory
from tests.test_exports_standards import DEFINE_XSD, NS, ODM_XSD, _body, _ndjson, _schema, _xpt

NOW = "2026-11-26T12:30:00+00:00"  # 20:30 in Beijing: diary reminders are due there


@pytest.fixture
def demo(app, client, clock):
    """The demo built at NOW; the printed output and a signed-in client per site."""
    clock.set(NOW)
    result = app.test_cli_runner().invoke(args=["demo", "--seed", "7"])
    assert result.exit_code == 0, result.output
    credentials = re.findall(r"coordinator\s+coordinator\.(\w+)@\S+\s+(\S+)", result.output)
    assert len(credentials) == 6
    coordinators = {}
    for code, password in credentials:
        email = f"coordinator.{code}@demo.example.org"
        login = client.post("/api/v1/auth/staff/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.json
        coordinators[code.upper()] = ApiClient(client, login.json["access_token"])
    return result.output, coordinators


def _all(api: ApiClient, url: str, **query) -> list[dict]:
    answer = api.get(url, query_string={"page_size": 100, **query})
    assert answer.status_code == 200, answer.json
    return answer.json


def test_demo_is_a_believable_trial_from_every_site(app, demo, factory, tmp_path, caplog):
    """One build (it takes tens of seconds), checked from each site, through every standard
    export, then a worker pass and a refusal."""
    output, coordinators = demo
    _check_sites(output, coordinators)
    _check_exports(app, factory, tmp_path)
    _check_worker_pass(app, caplog)
    again = app.test_cli_runner().invoke(args=["demo"])
    assert again.exit_code != 0
    assert "already holds participants" in again.output


def _check_sites(output: str, coordinators: dict[str, ApiClient]) -> None:
    now = datetime.fromisoformat(NOW)
    assert set(coordinators) == {"BJ302", "LZU1", "HNBOAO", "LYG1", "TJSH", "XA323"}
    for code, api in coordinators.items():
        report = api.get("/api/v1/compliance").json
        (site,) = report["sites"]
        assert site["site"] == code
        assert 0.75 <= site["rate"] <= 0.95, (code, site)
        rows = report["participants"]
        assert len(rows) == 7
        assert {r["arm"] for r in rows} == {"msc", "control"}
        assert min(r["rate"] for r in rows) < 0.75, "one participant keeps the diary badly"
        assert sum(r["rate"] >= 0.8 for r in rows) >= 5
        assert any(r["late"] for r in rows) and any(r["excused"] for r in rows)
        assert [r["current_missed_run"] for r in rows if r["current_missed_run"] >= 3] == [4]

        people = {p["id"]: p for p in _all(api, "/api/v1/participants")}
        assert [p["status"] for p in people.values()].count("withdrawn") == 1
        assert sum(p["timezone"] != "Asia/Shanghai" for p in people.values()) == 1
        for row in rows:  # the diary starts at enrolment, not months later
            enrolled = date.fromisoformat(row["enrolled_on"])
            first = _all(
                api,
                f"/api/v1/participants/{row['participant_id']}/diary-entries",
                to=(enrolled + timedelta(days=2)).isoformat(),
            )
            assert first, (code, row)

        alerts = _all(api, "/api/v1/alerts")
        open_kinds = sorted(a["kind"] for a in alerts if a["status"] == "open")
        assert open_kinds == sorted(
            ["symptom_urgent", "symptom", "missed_diary", "serious_adverse_event"]
        ), (code, open_kinds)
        decisions = {a["decision"] for a in alerts if a["status"] == "acknowledged"}
        assert {"adverse_event_recorded", "not_adverse_event"} <= decisions

        (sae,) = [a for a in alerts if a["kind"] == "serious_adverse_event"]
        ae = api.get(
            f"/api/v1/participants/{sae['participant_id']}/adverse-events/{sae['adverse_event_id']}"
        ).json
        deadline = datetime.fromisoformat(ae["report_deadline"])
        assert ae["reported_at"] is None
        assert now - timedelta(hours=12) < deadline < now + timedelta(hours=6), (code, ae)

        recent = (now - timedelta(days=90)).date().isoformat()  # fewer than 100 days
        entries = [
            e
            for pid in people
            for e in _all(api, f"/api/v1/participants/{pid}/diary-entries", **{"from": recent})
            if e["version"] > 1 or e["source"] == "staff"
        ]
        staff_versions = [
            v for e in entries for v in e["versions"] if v["actor"]["type"] == "staff"
        ]
        assert len([v for v in staff_versions if v["version"] > 1]) >= 2
        assert all(
            v["reason"] and v["actor_label"].endswith("@demo.example.org") for v in staff_versions
        )
        assert any(e["source"] == "staff" and e["version"] == 1 for e in entries), "on behalf"
        assert any(
            v["actor"]["type"] == "participant" and v["version"] == 2
            for e in entries
            for v in e["versions"]
        ), "a participant's own correction"
    assert "BJ302-0001" in output


def _check_exports(app, factory: Factory, tmp_path) -> None:
    """Every standard export of the demo is valid (ODM and Define-XML against their XSDs,
    FHIR R4B models, SDTM XPT read back); the fixtures of test_exports_standards.py are small."""
    admin = factory.as_(factory.staff("admin", sites=()))
    doc = etree.fromstring(_body(admin.get("/api/v1/exports/odm.xml")))
    schema = _schema(ODM_XSD)
    assert schema.validate(doc), schema.error_log
    with app.app_context():  # one SubjectData per participant the demo enrolled
        enrolled = db.session.scalar(select(func.count()).select_from(Participant))
    assert len(doc.findall(".//odm:SubjectData", NS)) == enrolled > 0
    for resource_type in fhir.RESOURCE_TYPES:
        assert _ndjson(admin, resource_type)
    archive = zipfile.ZipFile(io.BytesIO(_body(admin.get("/api/v1/exports/sdtm.zip"))))
    define = _schema(DEFINE_XSD)
    assert define.validate(etree.fromstring(archive.read("define.xml"))), define.error_log
    qs, _ = _xpt(archive, "qs", tmp_path)
    with archive.open("qs.csv") as f:
        assert len(qs) == sum(1 for _ in f) - 1 > 0
    report = admin.get("/api/v1/reports/symptoms").json
    assert {r["arm"] for r in report["rows"]} == {"msc", "control"}


def _check_worker_pass(app, caplog) -> None:
    """The demo phones receive what is due (logged only, without FCM credentials)."""
    with caplog.at_level(logging.INFO, logger="notifications.sender"):
        result = app.test_cli_runner().invoke(args=["notifications", "run", "--once"])
    assert result.exit_code == 0, result.output
    logged = [r.getMessage() for r in caplog.records if "logged only" in r.getMessage()]
    assert len(logged) >= 30, logged
    with app.app_context():
        statuses = list(db.session.scalars(select(Reminder.status)))
    # One logged message per phone; a bundled one ("reminder 3,5 (infusion) sent …")
    # speaks for each of its reminders.
    covered = sum(len(line.split()[1].split(",")) for line in logged)
    assert statuses.count("sent") == covered
    assert "undeliverable" in statuses  # the participant whose phone FCM no longer reaches
