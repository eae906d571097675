"""HL7 FHIR R4 bulk data: one NDJSON file per resource type, streamed.

Resources are written as plain dictionaries (one `json.dumps` per line, no model
objects: a line is cheap to make). Patients are pseudonymous: the study code is their
only identifier and their id. Staff are named by their account id only, as the audit
trail names them. The diary is the trial's own questionnaire (see `standards`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import Engine, Select, select

from api.models import AdverseEvent, DiaryEntry, Participant, Site
from api.services import odm
from api.services.exports import row_batches, utc_iso
from api.services.fhir_questionnaire import (
    ResponseLines,
    line,
    patient_ref,
    questionnaire,
    response,
)
from api.services.standards import FHIR_BASE, ITEMS

__all__ = ["RESOURCE_TYPES", "questionnaire", "stream_ndjson"]

RESOURCE_TYPES = ("Patient", "Questionnaire", "QuestionnaireResponse", "Provenance", "AdverseEvent")
STUDY_CODE_SYSTEM = f"{FHIR_BASE}:study-code"
STAFF_SYSTEM = f"{FHIR_BASE}:staff-account"
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
        else patient_ref(code)
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
        "subject": patient_ref(code),
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
        yield line(questionnaire())
        return
    stmt, keys, make = _plan(resource_type, site_ids, from_, to)
    if resource_type == "QuestionnaireResponse":
        lines = ResponseLines()
        for rows in row_batches(stmt, engine, keys):
            yield "".join(lines(row) for row in rows)
        return
    for rows in row_batches(stmt, engine, keys):
        yield "".join(line(make(row)) for row in rows)


def _plan(
    resource_type: str, site_ids: list[int], from_: date | None, to: date | None
) -> tuple[Select[Any], tuple[Any, ...], Callable[[Any], dict[str, Any]]]:
    if resource_type == "Patient":
        return _patients(site_ids), (P.c.id,), _patient
    if resource_type == "QuestionnaireResponse":
        return _entries(site_ids, from_, to), (P.c.id, D.c.diary_date), response
    if resource_type == "Provenance":
        return odm.versions_query(site_ids, from_, to), odm.version_keys(), _provenance
    return _adverse_events(site_ids, from_, to), (P.c.id, A.c.id), _adverse_event
