"""CDISC ODM, SDTM + Define-XML, FHIR NDJSON, the symptom report, on a hand-made trial.

The data set (made through the domain services, as the API would):

- P1, BJ302, msc, enrolled 2026-01-31 (month 1 begins on Feb 28: month-end clamping)
  - 01-31 (1,1,1,1) grade 1, note "first day"                       month 0
  - 02-27 (3,1,1,1) grade 3; amended by the coordinator on 03-02:
    abdominal_distension 3 -> 2, note "called", reason "participant phoned: wrong tap"
  - 02-28 (2,2,2,2) grade 2                                         month 1
- P2, BJ302, control, enrolled 2026-02-01
  - 02-01 (0,0,0,0) grade 0
  - 02-02 (2,2,2,2) grade 4, entered by the coordinator on 02-05, reason "paper
    diary": late (after its day ended, whoever entered it)
  - 02-03 (1,1,1,1) grade 1, submitted the next morning: late
- P3, LZU1, msc, enrolled 2026-02-01
  - 02-01 (4,0,0,0) grade 3                                         month 0
  - 03-01 (1,0,0,0) grade 0                                         month 1
- adverse events: P1 "Hepatocellular carcinoma" (serious: tumour), P2 "Ascites".
- P1's first lab visit took place on 01-31.

So BJ302 holds 2 participants, 6 entries, 7 versions; all sites 3, 8, 9.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import date, datetime
from pathlib import Path

import odmlib
import pyreadstat
import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask import current_app
from lxml import etree
from sqlalchemy import Row, select

from api.extensions import db
from api.models import DiaryEntry, Participant, ScheduleEvent
from api.services import (
    adverse_events,
    diary,
    diary_amend,
    exports,
    fhir,
    fhir_questionnaire,
    outcome_report,
    sdtm,
)
from api.services.standards import DIARY_CATEGORY

SCHEMAS = Path(odmlib.__file__).parent / "schemas"
ODM_XSD = SCHEMAS / "odm" / "1.3.2" / "ODM1-3-2.xsd"
DEFINE_XSD = SCHEMAS / "define" / "2.1" / "define2-1-0.xsd"
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3", "def": "http://www.cdisc.org/ns/def/v2.1"}
NOW = "2026-04-10T12:00:00+08:00"
REASON = "participant phoned: wrong tap"


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _scores(a: int, b: int, c: int, d: int, grade: int, note: str | None = None) -> dict:
    return {
        "abdominal_distension": a,
        "decreased_appetite": b,
        "debilitation": c,
        "leg_edema": d,
        "discomfort_grade": grade,
        "note": note,
    }


class Trial:
    """The hand-made data set above; attributes name its people."""

    def __init__(self, app, factory, clock) -> None:
        clock.set("2026-02-01T08:00:00+08:00")
        self.coordinator = factory.staff("coordinator", sites=("BJ302",))
        self.other_coordinator = factory.staff("coordinator", sites=("LZU1",))
        self.monitor = factory.staff("monitor", sites=())
        self.admin = factory.staff("admin", sites=())
        self.p1 = factory.participant(arm="msc", enrolled_on=date(2026, 1, 31))
        self.p2 = factory.participant(arm="control", enrolled_on=date(2026, 2, 1))
        self.p3 = factory.participant(site="LZU1", arm="msc", enrolled_on=date(2026, 2, 1))
        staff = ("staff", self.coordinator.id)
        with app.app_context():
            p1, p2, p3 = (db.session.get(Participant, p.id) for p in (self.p1, self.p2, self.p3))
            self._phone(p1, "2026-01-31", _scores(1, 1, 1, 1, 1, "first day"))
            amended = self._phone(p1, "2026-02-27", _scores(3, 1, 1, 1, 3))
            self._phone(p1, "2026-02-28", _scores(2, 2, 2, 2, 2))
            self._phone(p2, "2026-02-01", _scores(0, 0, 0, 0, 0))
            diary.submit(
                p2,
                {"diary_date": date(2026, 2, 2), **_scores(2, 2, 2, 2, 4)},
                staff,
                _at("2026-02-05T10:00:00+08:00"),
                current_app.extensions["study"],
                reason="paper diary",
            )
            self._phone(p2, "2026-02-03", _scores(1, 1, 1, 1, 1), at="2026-02-04T09:59:00+08:00")
            self._phone(p3, "2026-02-01", _scores(4, 0, 0, 0, 3))
            self._phone(p3, "2026-03-01", _scores(1, 0, 0, 0, 0))
            db.session.commit()
            diary_amend.amend(
                db.session.get(DiaryEntry, amended.id),
                p1,
                {"abdominal_distension": 2, "note": "called"},
                staff,
                _at("2026-03-02T10:00:00+08:00"),
                current_app.extensions["study"],
                reason=REASON,
            )
            self.amended_id = amended.id
            db.session.commit()
        clock.set("2026-03-05T10:00:00+08:00")
        with app.app_context():
            adverse_events.record(
                staff,
                db.session.get(Participant, self.p1.id),
                {
                    "term": "Hepatocellular carcinoma",
                    "onset_date": date(2026, 2, 20),
                    "grade": 3,
                    "seriousness": ["tumour"],
                    "relation_to_infusion": "unlikely",
                    "outcome": "not_recovered",
                },
            )
            adverse_events.record(
                staff,
                db.session.get(Participant, self.p2.id),
                {
                    "term": "Ascites",
                    "onset_date": date(2026, 2, 10),
                    "grade": 2,
                    "relation_to_infusion": "not_related",
                    "outcome": "recovering",
                },
            )
            visit = db.session.scalar(
                select(ScheduleEvent).where(
                    ScheduleEvent.participant_id == self.p1.id,
                    ScheduleEvent.kind == "lab_visit",
                    ScheduleEvent.number == 1,
                )
            )
            visit.actual_date, visit.status = date(2026, 1, 31), "completed"
            db.session.commit()
        clock.set(NOW)
        self.factory = factory

    @staticmethod
    def _phone(participant, day: str, values: dict, at: str | None = None) -> Row:
        moment = _at(at or f"{day}T21:00:00+08:00")
        submitted = diary.submit(
            participant,
            {"diary_date": date.fromisoformat(day), "recorded_at": moment, **values},
            ("participant", participant.id),
            moment,
            current_app.extensions["study"],
        )
        assert submitted.created
        return submitted.entry

    def as_(self, who):
        return self.factory.as_(who)


@pytest.fixture
def trial(app, factory, clock) -> Trial:
    return Trial(app, factory, clock)


def _body(response) -> bytes:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.is_streamed
    assert response.headers["Content-Disposition"].startswith("attachment")
    return response.get_data()


def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


# -- ODM ---------------------------------------------------------------------------------


def test_odm_is_valid_and_carries_every_version_with_its_audit_record(trial, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_ROWS", 2)  # several batches from a few rows
    response = trial.as_(trial.coordinator).get("/api/v1/exports/odm.xml")
    assert response.mimetype == "application/xml"
    doc = etree.fromstring(_body(response))
    schema = _schema(ODM_XSD)
    assert schema.validate(doc), schema.error_log
    assert doc.get("FileType") == "Transactional" and doc.get("ODMVersion") == "1.3.2"
    subjects = doc.findall(".//odm:SubjectData", NS)
    assert [s.get("SubjectKey") for s in subjects] == [trial.p1.study_code, trial.p2.study_code]
    assert [loc.get("OID") for loc in doc.findall(".//odm:Location", NS)] == ["LOC.BJ302"]
    users = {u.get("OID") for u in doc.findall(".//odm:User", NS)}
    assert users == {
        f"USR.P.{trial.p1.study_code}",
        f"USR.P.{trial.p2.study_code}",
        f"USR.S.{trial.coordinator.id}",
    }
    groups = doc.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.DIARY']", NS)
    assert len(groups) == 7
    assert [g.get("TransactionType") for g in groups].count("Update") == 1

    def day_groups(subject, day):
        event = subject.find(
            f"odm:StudyEventData[@StudyEventOID='SE.DIARY'][@StudyEventRepeatKey='{day}']", NS
        )
        return event.findall(".//odm:ItemGroupData", NS)

    def values(group):
        return {i.get("ItemOID"): i.get("Value") for i in group.findall("odm:ItemData", NS)}

    original, correction = day_groups(subjects[0], "2026-02-27")
    assert values(original)["IT.ABDDIST"] == "3" and "IT.NOTE" not in values(original)
    assert values(correction) == {"IT.ABDDIST": "2", "IT.NOTE": "called"}
    audit = correction.find("odm:AuditRecord", NS)
    assert audit.get("EditPoint") == "DataManagement"
    assert audit.find("odm:UserRef", NS).get("UserOID") == f"USR.S.{trial.coordinator.id}"
    assert audit.find("odm:LocationRef", NS).get("LocationOID") == "LOC.BJ302"
    assert audit.findtext("odm:DateTimeStamp", namespaces=NS) == "2026-03-02T02:00:00Z"
    assert audit.findtext("odm:ReasonForChange", namespaces=NS) == REASON
    assert "version 2" in audit.findtext("odm:SourceID", namespaces=NS)
    first_audit = original.find("odm:AuditRecord", NS)
    assert first_audit.find("odm:UserRef", NS).get("UserOID") == f"USR.P.{trial.p1.study_code}"
    assert first_audit.find("odm:ReasonForChange", NS) is None
    (paper,) = day_groups(subjects[1], "2026-02-02")
    assert paper.findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=NS) == "paper diary"
    visits = subjects[0].findall("odm:StudyEventData[@StudyEventOID='SE.LAB_VISIT']", NS)
    assert len(visits) == 5
    assert values(visits[0].find(".//odm:ItemGroupData", NS))["IT.ACTUALDT"] == "2026-01-31"
    translations = doc.findall(".//odm:CodeList[@OID='CL.SEVERITY']//odm:TranslatedText", NS)
    assert {t.get("{http://www.w3.org/XML/1998/namespace}lang") for t in translations} == {
        "en",
        "zh-CN",
    }
    assert "PRO-CTCAE" not in doc.find(".//odm:StudyEventDef[@OID='SE.DIARY']", NS).get("Category")


def test_odm_of_all_sites_and_of_a_day_range(trial):
    monitor = trial.as_(trial.monitor)
    doc = etree.fromstring(_body(monitor.get("/api/v1/exports/odm.xml")))
    assert _schema(ODM_XSD).validate(doc)
    assert len(doc.findall(".//odm:SubjectData", NS)) == 3
    assert len(doc.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.DIARY']", NS)) == 9
    ranged = monitor.get(
        "/api/v1/exports/odm.xml", query_string={"from": "2026-02-27", "to": "2026-02-28"}
    )
    doc = etree.fromstring(_body(ranged))
    keys = {
        e.get("StudyEventRepeatKey")
        for e in doc.findall(".//odm:StudyEventData[@StudyEventOID='SE.DIARY']", NS)
    }
    assert keys == {"2026-02-27", "2026-02-28"}


# -- FHIR --------------------------------------------------------------------------------


def _ndjson(client, resource_type: str, **query) -> list[dict]:
    response = client.get(f"/api/v1/exports/fhir/{resource_type}.ndjson", query_string=query)
    assert response.mimetype == "application/fhir+ndjson"
    lines = _body(response).decode("utf-8").splitlines()
    model = get_fhir_model_class(resource_type)
    for line in lines:  # every line is a valid R4B resource of its type
        model.model_validate_json(line)
    return [json.loads(line) for line in lines]


def test_fhir_lines_parse_and_carry_amendments_with_provenance(trial, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_ROWS", 2)
    client = trial.as_(trial.coordinator)
    patients = _ndjson(client, "Patient")
    assert [p["id"] for p in patients] == [trial.p1.study_code, trial.p2.study_code]
    assert all("name" not in p for p in patients)
    (questionnaire,) = _ndjson(client, "Questionnaire")
    assert "PRO-CTCAE" not in questionnaire["title"]
    first = questionnaire["item"][0]["answerOption"][1]["valueCoding"]
    assert first["display"] == "mild"
    assert first["_display"]["extension"][0]["extension"][1]["valueString"] == "轻度"
    responses = _ndjson(client, "QuestionnaireResponse")
    assert len(responses) == 6
    by_id = {r["id"]: r for r in responses}
    amended = by_id[f"entry-{trial.amended_id}"]
    assert amended["status"] == "amended"
    assert amended["authored"] == "2026-02-27T21:00:00+08:00"
    assert amended["item"][0]["answer"][0]["valueCoding"]["code"] == "2"
    assert [r["status"] for r in responses].count("completed") == 5
    provenance = _ndjson(client, "Provenance")
    assert len(provenance) == 7
    (update,) = [p for p in provenance if p["activity"]["coding"][0]["code"] == "UPDATE"]
    assert update["target"][0]["reference"] == (
        f"QuestionnaireResponse/entry-{trial.amended_id}/_history/2"
    )
    assert update["reason"] == [{"text": REASON}]
    assert update["recorded"] == "2026-03-02T02:00:00Z"
    assert update["agent"][0]["who"]["identifier"]["value"] == str(trial.coordinator.id)
    assert sorted(p["reason"][0]["text"] for p in provenance if "reason" in p) == [
        "paper diary",
        REASON,
    ]
    events = _ndjson(client, "AdverseEvent")
    assert [e["event"]["text"] for e in events] == ["Hepatocellular carcinoma", "Ascites"]
    assert [e["seriousness"]["coding"][0]["code"] for e in events] == ["serious", "non-serious"]
    assert len(_ndjson(trial.as_(trial.admin), "QuestionnaireResponse")) == 8
    assert len(_ndjson(client, "QuestionnaireResponse", **{"from": "2026-02-28"})) == 1


def test_fhir_unknown_resource_type_is_404(trial):
    response = trial.as_(trial.coordinator).get("/api/v1/exports/fhir/Observation.ndjson")
    assert response.status_code == 404 and response.json["error"] == "unknown_resource_type"


# -- SDTM --------------------------------------------------------------------------------


def _xpt(archive: zipfile.ZipFile, name: str, tmp_path: Path):
    path = tmp_path / f"{name}.xpt"
    path.write_bytes(archive.read(f"{name}.xpt"))
    frame, meta = pyreadstat.read_xport(str(path), encoding="utf-8")
    return frame, meta


def test_sdtm_zip_reads_back_and_define_is_valid(trial, tmp_path, monkeypatch):
    monkeypatch.setattr(exports, "BATCH_ROWS", 2)
    response = trial.as_(trial.coordinator).get("/api/v1/exports/sdtm.zip")
    assert response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(_body(response)))
    assert sorted(archive.namelist()) == sorted(
        [f"{d.name.lower()}.{ext}" for d in sdtm.DATASETS for ext in ("xpt", "csv")]
        + ["define.xml"]
    )
    qs, meta = _xpt(archive, "qs", tmp_path)
    assert meta.table_name == "QS" and len(qs) == 30  # 6 entries x 5 items
    assert list(qs.columns) == [v.name for v in sdtm.QS.variables]
    assert set(qs["QSCAT"]) == {DIARY_CATEGORY} and "PRO-CTCAE" not in DIARY_CATEGORY
    assert set(qs["QSEVLINT"]) == {"-PT24H"}
    p1 = qs[qs["USUBJID"] == f"UCMSC-LC-{trial.p1.study_code}"]
    assert list(p1["QSSEQ"]) == list(range(1, 16))
    amended = p1[(p1["QSDTC"] == "2026-02-27") & (p1["QSTESTCD"] == "ABDDIST")]
    assert list(amended["QSSTRESN"]) == [2.0] and list(amended["QSORRES"]) == ["moderate"]
    assert list(amended["QSDY"]) == [28.0]
    with archive.open("qs.csv") as f:
        rows = list(csv.DictReader(io.TextIOWrapper(f, "utf-8")))
    assert len(rows) == 30 and rows[0]["QSTESTCD"] == "ABDDIST"
    supp, _ = _xpt(archive, "suppqs", tmp_path)
    assert list(supp["QNAM"]) == ["QSLATE"] * 2 and list(supp["QVAL"]) == ["Y"] * 2
    assert list(supp["USUBJID"]) == [f"UCMSC-LC-{trial.p2.study_code}"] * 2
    ae, _ = _xpt(archive, "ae", tmp_path)
    assert list(ae["AETERM"]) == ["Hepatocellular carcinoma", "Ascites"]
    assert list(ae["AESER"]) == ["Y", "N"] and list(ae["AESCAN"]) == ["Y", "N"]
    assert list(ae["AESDTH"]) == ["N", "N"] and ae["AEOUT"].iloc[0] == (
        "NOT RECOVERED/NOT RESOLVED"
    )
    dm, _ = _xpt(archive, "dm", tmp_path)
    assert list(dm["ARMCD"]) == ["MSC", "CONTROL"] and list(dm["RFSTDTC"]) == [
        "2026-01-31",
        "2026-02-01",
    ]
    sv, _ = _xpt(archive, "sv", tmp_path)
    assert list(sv["VISIT"]) == ["LAB VISIT 1"] and list(sv["SVSTDY"]) == [1.0]
    define = etree.fromstring(archive.read("define.xml"))
    schema = _schema(DEFINE_XSD)
    assert schema.validate(define), schema.error_log
    groups = [g.get("Name") for g in define.findall(".//odm:ItemGroupDef", NS)]
    assert groups == ["DM", "QS", "SUPPQS", "AE", "SV"]
    comment = define.find(".//def:CommentDef[@OID='COM.QS.QSCAT']", NS)
    assert "not the NCI PRO-CTCAE" in "".join(comment.itertext())


def test_sdtm_of_another_site_is_404(trial):
    response = trial.as_(trial.other_coordinator).get(
        "/api/v1/exports/sdtm.zip", query_string={"site": "BJ302"}
    )
    assert response.status_code == 404


# -- the symptom report ------------------------------------------------------------------


def _row(report, arm, month):
    (row,) = [r for r in report["rows"] if r["arm"] == arm and r["month"] == month]
    return row


def test_symptom_report_means_and_confidence_intervals_by_hand(trial):
    response = trial.as_(trial.monitor).get("/api/v1/reports/symptoms")
    assert response.status_code == 200, response.json
    report = response.json
    assert [(r["arm"], r["month"]) for r in report["rows"]] == [
        ("control", 0),
        ("msc", 0),
        ("msc", 1),
    ]
    # msc month 0: P1's days 01-31 and 02-27 (amended: 1 and 2 → 1.5), P3's 02-01 (4).
    # mean 2.75; SD sqrt(2 x 1.25²) = 1.7678; CI 2.75 ± 12.7062 x 1.7678 / √2 = ± 15.8828.
    msc0 = _row(report, "msc", 0)
    assert msc0["participants"] == 2 and msc0["diary_days"] == 3
    ad = msc0["symptoms"]["abdominal_distension"]
    assert ad["mean"] == 2.75 and ad["sd"] == pytest.approx(1.7678, abs=1e-4)
    assert ad["ci_low"] == pytest.approx(-13.1328, abs=1e-4)
    assert ad["ci_high"] == pytest.approx(18.6328, abs=1e-4)
    assert ad["change"] == {"n": 2, "mean": 0.0, "sd": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    # discomfort: P1 (1 + 3) / 2 = 2, P3 3 → 2.5; grade ≥ 3 on 2 of the 3 days.
    assert msc0["symptoms"]["discomfort_grade"]["mean"] == 2.5
    assert msc0["share_grade_3_or_more"] == pytest.approx(0.6667, abs=1e-4)
    # msc month 1 (P1 from Feb 28, the clamped month end; P3 from Mar 1): 2 and 1.
    msc1 = _row(report, "msc", 1)
    ad = msc1["symptoms"]["abdominal_distension"]
    assert ad["mean"] == 1.5 and ad["sd"] == pytest.approx(0.7071, abs=1e-4)
    assert ad["ci_low"] == pytest.approx(-4.8531, abs=1e-4)
    assert ad["ci_high"] == pytest.approx(7.8531, abs=1e-4)
    # change: P1 2 - 1.5 = 0.5, P3 1 - 4 = -3 → -1.25; SD 2.4749; ± 12.7062 x 1.75.
    change = ad["change"]
    assert change["n"] == 2 and change["mean"] == -1.25
    assert change["sd"] == pytest.approx(2.4749, abs=1e-4)
    assert change["ci_low"] == pytest.approx(-23.4859, abs=1e-4)
    assert change["ci_high"] == pytest.approx(20.9859, abs=1e-4)
    assert msc1["share_grade_3_or_more"] == 0
    # control month 0: P2 alone, days 0, 2, 1 → 1; one participant: no SD or CI.
    control = _row(report, "control", 0)
    ad = control["symptoms"]["abdominal_distension"]
    assert (ad["n"], ad["mean"], ad["sd"], ad["ci_low"]) == (1, 1.0, None, None)
    assert control["share_grade_3_or_more"] == pytest.approx(0.3333, abs=1e-4)


def test_symptom_report_filters_and_csv(trial):
    monitor = trial.as_(trial.monitor)
    rows = monitor.get("/api/v1/reports/symptoms", query_string={"arm": "msc", "site": "LZU1"})
    assert rows.status_code == 200
    msc0 = _row(rows.json, "msc", 0)
    assert msc0["participants"] == 1 and msc0["symptoms"]["abdominal_distension"]["mean"] == 4
    response = monitor.get("/api/v1/reports/symptoms.csv", query_string={"arm": "control"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(table[0]) == list(outcome_report.CSV_COLUMNS)
    assert [(r["arm"], r["month"], r["abdominal_distension_mean"]) for r in table] == [
        ("control", "0", "1.0")
    ]
    bad = monitor.get("/api/v1/reports/symptoms", query_string={"arm": "placebo"})
    assert bad.status_code == 422 and "arm" in bad.json["errors"]


def test_symptom_report_roles(trial, app):
    url = "/api/v1/reports/symptoms"
    assert trial.as_(trial.coordinator).get(url).status_code == 403
    assert trial.as_(trial.coordinator).get(url + ".csv").status_code == 403
    assert trial.as_(trial.admin).get(url).status_code == 200
    assert trial.as_(trial.p1).get(url).status_code == 403
    assert trial.as_(None).get(url).status_code == 401
    app.config["OUTCOME_REPORT_ROLES"] = ("coordinator", "monitor", "admin")
    try:
        coordinator = trial.as_(trial.coordinator)
        own = coordinator.get(url)
        assert own.status_code == 200
        assert {r["arm"] for r in own.json["rows"]} == {"msc", "control"}
        assert _row(own.json, "msc", 0)["participants"] == 1  # BJ302's P1 only
        assert coordinator.get(url, query_string={"site": "LZU1"}).status_code == 404
    finally:
        app.config["OUTCOME_REPORT_ROLES"] = ("monitor", "admin")


# -- every export: scope, roles, documentation --------------------------------------------

EXPORTS = (
    "/api/v1/exports/odm.xml",
    "/api/v1/exports/sdtm.zip",
    *(f"/api/v1/exports/fhir/{t}.ndjson" for t in fhir.RESOURCE_TYPES),
)


@pytest.mark.parametrize("url", EXPORTS)
def test_exports_refuse_another_site_and_non_staff(trial, url):
    other = trial.as_(trial.other_coordinator).get(url, query_string={"site": "BJ302"})
    assert other.status_code == 404 and other.json["code"] == 404
    assert trial.as_(trial.p1).get(url).status_code == 403
    assert trial.as_(None).get(url).status_code == 401
    bad = trial.as_(trial.coordinator).get(url, query_string={"site": "X"})
    assert bad.status_code == 422 and "site" in bad.json["errors"]


def test_exports_are_documented_with_their_media_types(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]

    def media(path):
        return set(paths[path]["get"]["responses"]["200"]["content"])

    assert media("/api/v1/exports/odm.xml") == {"application/xml"}
    assert media("/api/v1/exports/sdtm.zip") == {"application/zip"}
    assert media("/api/v1/exports/fhir/{resource_type}.ndjson") == {"application/fhir+ndjson"}
    assert media("/api/v1/reports/symptoms.csv") == {"text/csv"}
    assert "application/json" in media("/api/v1/reports/symptoms")


# Every export of the demo data set is validated in tests/test_demo.py, on the
# demo that test builds anyway (a build takes tens of seconds).


# -- the study-month rule in SQL ----------------------------------------------------------


@pytest.mark.parametrize(
    ("enrolled", "day", "month"),
    [
        ("2026-01-31", "2026-02-27", 0),
        ("2026-01-31", "2026-02-28", 1),  # Jan 31 + 1 month = Feb 28
        ("2026-01-31", "2026-03-30", 1),
        ("2026-01-31", "2026-03-31", 2),
        ("2028-01-31", "2028-02-29", 1),  # leap year
        ("2026-03-15", "2026-03-15", 0),
        ("2026-03-15", "2027-03-14", 11),
        ("2026-03-15", "2029-03-15", 36),
        ("2026-12-31", "2027-01-30", 0),
        ("2026-12-31", "2027-01-31", 1),
    ],
)
def test_study_month_in_sql_follows_the_schedule_rule(app, enrolled, day, month):
    from sqlalchemy import Date, literal

    from api.services.schedule import add_months
    from api.services.sqldates import months_since

    start, end = date.fromisoformat(enrolled), date.fromisoformat(day)
    assert add_months(start, month) <= end < add_months(start, month + 1)
    with app.app_context():
        expression = months_since(literal(start, Date()), literal(end, Date()))
        assert db.session.scalar(select(expression)) == month


def test_questionnaire_response_lines_equal_the_resource_tree():
    from datetime import UTC

    recorded = datetime(2026, 2, 27, 13, 0, tzinfo=UTC)
    rows = [
        (1, "BJ302-0001", 7, date(2026, 2, 27), 2, 1, 1, 1, 3, 'called "back"\n', recorded, 480,
         2, True, "staff"),
        (1, "BJ302-0001", 8, date(2026, 2, 28), 0, 4, 0, 0, 0, None, recorded, -300, 1, False,
         "participant"),
    ]  # fmt: skip
    lines = fhir_questionnaire.ResponseLines()
    for row in rows:
        assert lines(row) == fhir_questionnaire.line(fhir_questionnaire.response(row))
        get_fhir_model_class("QuestionnaireResponse").model_validate_json(lines(row))


DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("admin", {}, "odm_trial_all_sites.xml"),
        ("coordinator", {"from": "2026-02-27"}, "odm_trial_bj302_from_0227.xml"),
    ],
)
def test_odm_is_byte_identical_to_the_reference_document(trial, monkeypatch, who, query, expected):
    """The reference files are the document as written when every day and instant was
    formatted in Python (before the database formatted them): the same bytes, on both
    databases, across several batches."""
    monkeypatch.setattr(exports, "BATCH_ROWS", 2)
    body = _body(trial.as_(getattr(trial, who)).get("/api/v1/exports/odm.xml", query_string=query))
    assert body == (DATA / expected).read_bytes()


@pytest.mark.parametrize(
    ("instant", "offset"),
    [
        ("2026-02-27T12:30:00+00:00", 480),
        ("2026-02-27T12:30:00.123456+00:00", -330),
        ("2026-12-31T23:59:59.999999+00:00", 840),  # crosses into the next year
        ("2026-01-01T00:00:00.000001+00:00", -720),  # back into the year before
        ("2026-06-01T04:00:00.5+00:00", 0),
        ("2026-06-01T04:00:00+00:00", 345),
    ],
)
def test_instants_as_text_in_sql_equal_python_isoformat(app, instant, offset):
    from datetime import UTC, timedelta, timezone

    from sqlalchemy import Integer, literal

    from api.models.base import UTCDateTime
    from api.services.sqldates import local_iso_text, utc_text

    value = datetime.fromisoformat(instant)
    local = value.astimezone(timezone(timedelta(minutes=offset))).isoformat()
    with app.app_context():
        column = literal(value, UTCDateTime())
        local_sql, utc_sql = db.session.execute(
            select(local_iso_text(column, literal(offset, Integer())), utc_text(column))
        ).one()
    assert local_sql == local
    assert utc_sql == value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
