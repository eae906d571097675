"""The diary as a FHIR Questionnaire and its entries as QuestionnaireResponses."""

# ruff: noqa: RUF001 (Chinese text keeps its full-width punctuation)

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from api.services.exports import utc_iso
from api.services.standards import (
    DIARY_CATEGORY,
    DIARY_NAME,
    FHIR_BASE,
    ITEMS,
    QUESTIONNAIRE_URL,
    SCALES,
    Item,
)

SCALE_SYSTEM = f"{FHIR_BASE}:scale"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"


def line(resource: dict[str, Any]) -> str:
    return dumps(resource) + "\n"


def patient_ref(study_code: str) -> dict[str, str]:
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


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
        "item": [*(_choice_item(item) for item in ITEMS), _note_item()],
    }


def _choice_item(item: Item) -> dict[str, Any]:
    options = [
        {
            "valueCoding": {
                "system": f"{SCALE_SYSTEM}:{item.scale}",
                "code": str(code),
                "display": en,
                "_display": _translated(zh),
            }
        }
        for code, (en, zh) in enumerate(SCALES[item.scale])
    ]
    return {
        "linkId": item.field,
        "text": item.question_en,
        "_text": _translated(item.question_zh),
        "type": "choice",
        "required": True,
        "answerOption": options,
    }


def _note_item() -> dict[str, Any]:
    return {
        "linkId": "note",
        "text": "Note (optional free text)",
        "_text": _translated("备注（可选）"),
        "type": "string",
        "required": False,
        "maxLength": 1000,
    }


def _answer(item_scale: str, value: int) -> dict[str, Any]:
    return {
        "valueCoding": {
            "system": f"{SCALE_SYSTEM}:{item_scale}",
            "code": str(value),
            "display": SCALES[item_scale][value][0],
        }
    }


def response(row: Any) -> dict[str, Any]:
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
        "subject": patient_ref(code),
        "authored": _instant(recorded, offset),
        "extension": [
            {"url": f"{FHIR_BASE}:diary-date", "valueDate": str(day)},
            {"url": f"{FHIR_BASE}:late", "valueBoolean": bool(late)},
            {"url": f"{FHIR_BASE}:source", "valueCode": source},
        ],
        "item": items,
    }


class ResponseLines:
    """QuestionnaireResponse lines made from JSON fragments computed once.

    The line is exactly `line(response(row))` (the tests compare both), but each
    answer's coding, the questionnaire and the constant keys are serialised once, so a
    line costs a few string joins instead of a dictionary tree and a `json.dumps`.
    """

    def __init__(self) -> None:
        self._answers = [
            [
                dumps({"linkId": item.field, "answer": [_answer(item.scale, code)]})
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
            items += "," + dumps({"linkId": "note", "answer": [{"valueString": note}]})
        return (
            f'{{"resourceType":"QuestionnaireResponse","id":"entry-{entry_id}",'
            f'"meta":{{"versionId":"{version}"}},'
            f'"identifier":{{"system":"{FHIR_BASE}:diary-entry","value":"{entry_id}"}},'
            f'"questionnaire":"{QUESTIONNAIRE_URL}",'
            f'"status":"{"amended" if version > 1 else "completed"}",'
            f'"subject":{{"reference":{dumps("Patient/" + code)}}},'
            f'"authored":"{self._authored(recorded, offset)}",'
            f'"extension":[{{"url":"{FHIR_BASE}:diary-date","valueDate":"{day}"}},'
            f'{{"url":"{FHIR_BASE}:late","valueBoolean":{"true" if late else "false"}}},'
            f'{{"url":"{FHIR_BASE}:source","valueCode":{dumps(source)}}}],'
            f'"item":[{items}]}}\n'
        )
