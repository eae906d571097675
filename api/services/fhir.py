"""HL7 FHIR R4 bulk data: one NDJSON file per resource type, streamed.

Resources are written as plain dictionaries (one `json.dumps` per line, no model
objects: a line is cheap to make). Patients are pseudonymous: the study code is their
only identifier and their id. Staff are named by their account id only, as the audit
trail names them. The diary is the trial's own questionnaire (see `standards`).
"""

# ruff: noqa: RUF001 (Chinese text keeps its full-width punctuation)

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, Select, select

from api.models import AdverseEvent, DiaryEntry, Participant, Site
from api.services import odm
from api.services.exports import row_batches, utc_iso
from api.services.standards import (
    DIARY_CATEGORY,
    DIARY_NAME,
    FHIR_BASE,
    ITEMS,
    QUESTIONNAIRE_URL,
    SCALES,
)

RESOURCE_TYPES = ("Patient", "Questionnaire", "QuestionnaireResponse", "Provenance", "AdverseEvent")
STUDY_CODE_SYSTEM = f"{FHIR_BASE}:study-code"
STAFF_SYSTEM = f"{FHIR_BASE}:staff-account"
SCALE_SYSTEM = f"{FHIR_BASE}:scale"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
AE_OUTCOME = "http://terminology.hl7.org/CodeSystem/adverse-event-outcome"
OUTCOMES = {
    "recovered": "resolved",
    "recovering": "recovering",
    "not_recovered": "ongoing",
    "recovered_with_sequelae": "resolvedWithSequelae",
    "fatal": "fatal",
    "unknown": "unknown",
}

P = Participant.__table__
S = Site.__table__
D = DiaryEntry.__table__
A = AdverseEvent.__table__


def _line(resource: dict[str, Any]) -> str:
    return _dumps(resource) + "\n"


def _patient_ref(study_code: str) -> dict[str, str]:
    return {"reference": f"Patient/{study_code}"}


def _instant(value: datetime | str, offset_minutes: int | None = None) -> str:
    """An instant in FHIR's form: in UTC, or at the device's own offset when known."""
    if offset_minutes is None:
        return utc_iso(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(timezone(timedelta(minutes=offset_minutes))).isoformat()


def _translated(zh: str) -> dict[str, Any]:
    return {
        "extension": [
            {
                "url": TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "zh-CN"},
                    {"url": "content", "valueString": zh},
                ],
            }
        ]
    }


def questionnaire() -> dict[str, Any]:
    """The diary as a Questionnaire, with answer options and zh-CN translations."""
    items = []
    for item in ITEMS:
        options = []
        for code, (en, zh) in enumerate(SCALES[item.scale]):
            options.append(
                {
                    "valueCoding": {
                        "system": f"{SCALE_SYSTEM}:{item.scale}",
                        "code": str(code),
                        "display": en,
                        "_display": _translated(zh),
                    }
                }
            )
        items.append(
            {
                "linkId": item.field,
                "text": item.question_en,
                "_text": _translated(item.question_zh),
                "type": "choice",
                "required": True,
                "answerOption": options,
            }
        )
    items.append(
        {
            "linkId": "note",
            "text": "Note (optional free text)",
            "_text": _translated("备注（可选）"),
            "type": "string",
            "required": False,
            "maxLength": 1000,
        }
    )
    return {
        "resourceType": "Questionnaire",
        "id": "symptom-diary",
        "url": QUESTIONNAIRE_URL,
        "name": "SymptomDiary",
        "title": DIARY_NAME,
        "status": "active",
        "subjectType": ["Patient"],
        "code": [
            {
                "system": f"{FHIR_BASE}:instrument",
                "code": "symptom-diary",
                "display": DIARY_CATEGORY,
            }
        ],
        "description": "Daily recall of the last 24 hours: four symptoms on a 0-4 scale in "
        "the PRO-CTCAE style and the protocol's discomfort grade. It is the trial's own "
        "diary, not the NCI PRO-CTCAE instrument.",
        "item": items,
    }


def _patients(site_ids: list[int]) -> Select[Any]:
    return (
        select(P.c.id, P.c.study_code, S.c.code, S.c.name, P.c.status, P.c.arm)
        .join(S, S.c.id == P.c.site_id)
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id)
    )


def _patient(row: Any) -> dict[str, Any]:
    _, code, site, site_name, status, arm = row
    return {
        "resourceType": "Patient",
        "id": code,
        "identifier": [{"system": STUDY_CODE_SYSTEM, "value": code}],
        "active": status == "active",
        "managingOrganization": {"display": f"{site_name} ({site})"},
        "meta": {"tag": [{"system": f"{FHIR_BASE}:arm", "code": arm}]},
    }


def _entries(site_ids: list[int], from_: date | None, to: date | None) -> Select[Any]:
    stmt = (
        select(
            P.c.id,
            P.c.study_code,
            D.c.id,
            D.c.diary_date,
            *(D.c[i.field] for i in ITEMS),
            D.c.note,
            D.c.recorded_at,
            D.c.recorded_offset_minutes,
            D.c.version,
            D.c.late,
            D.c.source,
        )
        .select_from(D.join(P, P.c.id == D.c.participant_id))
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id, D.c.diary_date)
    )
    if from_:
        stmt = stmt.where(D.c.diary_date >= from_)
    if to:
        stmt = stmt.where(D.c.diary_date <= to)
    return stmt


def _answer(item_scale: str, value: int) -> dict[str, Any]:
    return {
        "valueCoding": {
            "system": f"{SCALE_SYSTEM}:{item_scale}",
            "code": str(value),
            "display": SCALES[item_scale][value][0],
        }
    }


def _response(row: Any) -> dict[str, Any]:
    code, entry_id, day, scores = row[1], row[2], row[3], row[4:9]
    note, recorded, offset, version, late, source = row[9:15]
    items = [
        {"linkId": item.field, "answer": [_answer(item.scale, score)]}
        for item, score in zip(ITEMS, scores, strict=True)
    ]
    if note:
        items.append({"linkId": "note", "answer": [{"valueString": note}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"entry-{entry_id}",
        "meta": {"versionId": str(version)},
        "identifier": {"system": f"{FHIR_BASE}:diary-entry", "value": str(entry_id)},
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "amended" if version > 1 else "completed",
        "subject": _patient_ref(code),
        "authored": _instant(recorded, offset),
        "extension": [
            {"url": f"{FHIR_BASE}:diary-date", "valueDate": str(day)},
            {"url": f"{FHIR_BASE}:late", "valueBoolean": bool(late)},
            {"url": f"{FHIR_BASE}:source", "valueCode": source},
        ],
        "item": items,
    }


class _ResponseLines:
    """QuestionnaireResponse lines made from JSON fragments computed once.

    The line is exactly `_line(_response(row))` (the tests compare both), but each
    answer's coding, the questionnaire and the constant keys are serialised once, so a
    line costs a few string joins instead of a dictionary tree and a `json.dumps`.
    """

    def __init__(self) -> None:
        self._answers = [
            [
                _dumps({"linkId": item.field, "answer": [_answer(item.scale, code)]})
                for code in range(len(SCALES[item.scale]))
            ]
            for item in ITEMS
        ]
        self._zones: dict[int, timezone] = {}

    def _authored(self, value: datetime | str, offset: int) -> str:
        zone = self._zones.get(offset)
        if zone is None:
            zone = self._zones[offset] = timezone(timedelta(minutes=offset))
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(zone).isoformat()

    def __call__(self, row: Any) -> str:
        code, entry_id, day, scores = row[1], row[2], row[3], row[4:9]
        note, recorded, offset, version, late, source = row[9:15]
        items = ",".join(self._answers[i][score] for i, score in enumerate(scores))
        if note:
            items += "," + _dumps({"linkId": "note", "answer": [{"valueString": note}]})
        return (
            f'{{"resourceType":"QuestionnaireResponse","id":"entry-{entry_id}",'
            f'"meta":{{"versionId":"{version}"}},'
            f'"identifier":{{"system":"{FHIR_BASE}:diary-entry","value":"{entry_id}"}},'
            f'"questionnaire":"{QUESTIONNAIRE_URL}",'
            f'"status":"{"amended" if version > 1 else "completed"}",'
            f'"subject":{{"reference":{_dumps("Patient/" + code)}}},'
            f'"authored":"{self._authored(recorded, offset)}",'
            f'"extension":[{{"url":"{FHIR_BASE}:diary-date","valueDate":"{day}"}},'
            f'{{"url":"{FHIR_BASE}:late","valueBoolean":{"true" if late else "false"}}},'
            f'{{"url":"{FHIR_BASE}:source","valueCode":{_dumps(source)}}}],'
            f'"item":[{items}]}}\n'
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _provenance(row: Any) -> dict[str, Any]:
    """A row of `odm.versions_query` → the version's Provenance: who, when, why."""
    entry_id, version, code = row[1], row[3], row[18]
    actor_type, actor_id, at, reason = row[14], row[15], row[16], row[17]
    who: dict[str, Any] = (
        {
            "identifier": {"system": STAFF_SYSTEM, "value": str(actor_id)},
            "display": f"staff account {actor_id}",
        }
        if actor_type == "staff"
        else _patient_ref(code)
    )
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": f"entry-{entry_id}-v{version}",
        "target": [{"reference": f"QuestionnaireResponse/entry-{entry_id}/_history/{version}"}],
        "recorded": at,  # UTC text already (see `odm.versions_query`)
        "activity": {
            "coding": [{"system": DATA_OPERATION, "code": "CREATE" if version == 1 else "UPDATE"}]
        },
        "agent": [{"type": {"text": actor_type}, "who": who}],
    }
    if reason:
        resource["reason"] = [{"text": reason}]
    return resource


def _adverse_events(site_ids: list[int], from_: date | None, to: date | None) -> Select[Any]:
    stmt = (
        select(
            P.c.id,
            A.c.id,
            P.c.study_code,
            A.c.term,
            A.c.onset_date,
            A.c.grade,
            A.c.seriousness,
            A.c.outcome,
            A.c.awareness_at,
            A.c.created_at,
            A.c.relation_to_infusion,
        )
        .select_from(A.join(P, P.c.id == A.c.participant_id))
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id, A.c.id)
    )
    if from_:
        stmt = stmt.where(A.c.onset_date >= from_)
    if to:
        stmt = stmt.where(A.c.onset_date <= to)
    return stmt


def _adverse_event(row: Any) -> dict[str, Any]:
    _, ae_id, code, term, onset, grade, seriousness, outcome, aware, created, relation = row
    serious = bool(seriousness)
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": f"ae-{ae_id}",
        "actuality": "actual",
        "event": {"text": term},
        "subject": _patient_ref(code),
        "date": str(onset),
        "recordedDate": utc_iso(created),
        "seriousness": {
            "coding": [{"system": SERIOUSNESS, "code": "serious" if serious else "non-serious"}]
        },
        "severity": {"text": f"grade {grade}"},
        "outcome": {"coding": [{"system": AE_OUTCOME, "code": OUTCOMES.get(outcome, "unknown")}]},
        "extension": [
            {"url": f"{FHIR_BASE}:seriousness-criterion", "valueCode": c} for c in seriousness or ()
        ]
        + [{"url": f"{FHIR_BASE}:relation-to-infusion", "valueCode": relation}],
    }
    if aware:
        resource["detected"] = utc_iso(aware)
    return resource


def stream_ndjson(
    resource_type: str, engine: Engine, site_ids: list[int], from_: date | None, to: date | None
) -> Iterator[str]:
    """Yield NDJSON chunks of one resource type (one batch of rows per chunk)."""
    if resource_type == "Questionnaire":
        yield _line(questionnaire())
        return
    stmt, keys, make = _plan(resource_type, site_ids, from_, to)
    if resource_type == "QuestionnaireResponse":
        lines = _ResponseLines()
        for rows in row_batches(stmt, engine, keys):
            yield "".join(lines(row) for row in rows)
        return
    for rows in row_batches(stmt, engine, keys):
        yield "".join(_line(make(row)) for row in rows)


def _plan(
    resource_type: str, site_ids: list[int], from_: date | None, to: date | None
) -> tuple[Select[Any], tuple[Any, ...], Callable[[Any], dict[str, Any]]]:
    if resource_type == "Patient":
        return _patients(site_ids), (P.c.id,), _patient
    if resource_type == "QuestionnaireResponse":
        return _entries(site_ids, from_, to), (P.c.id, D.c.diary_date), _response
    if resource_type == "Provenance":
        return odm.versions_query(site_ids, from_, to), odm.version_keys(), _provenance
    return _adverse_events(site_ids, from_, to), (P.c.id, A.c.id), _adverse_event
