"""The ODM MetaDataVersion of the diary export: study, events, forms, items, code lists."""

# ruff: noqa: RUF001 (Chinese text keeps its full-width punctuation)

from __future__ import annotations

from api.services.standards import (
    DIARY_CATEGORY,
    DIARY_NAME,
    ITEMS,
    SCALES,
    STUDY_OID,
    attr,
    text,
)
from api.study import StudyConfig

MDV_OID = "MDV.1"
EVENT_OIDS = {"infusion": "SE.INFUSION", "lab_visit": "SE.LAB_VISIT", "follow_up": "SE.FOLLOW_UP"}
EVENT_NAMES = {"infusion": "UC-MSC infusion", "lab_visit": "Lab visit", "follow_up": "Follow-up"}
VALUE_ITEMS = (
    ("diary_date", "IT.DIARYDAT"),
    *((item.field, f"IT.{item.testcd}") for item in ITEMS),
    ("note", "IT.NOTE"),
    ("recorded_at", "IT.RECORDED"),
)


def metadata(study: StudyConfig) -> str:
    """The whole `Study` element, in the order ODM 1.3.2 requires."""
    parts = [
        *_study_and_protocol(),
        *_event_defs(study),
        *_form_and_group_defs(),
        *_item_defs(),
        *_code_lists(),
        "</MetaDataVersion></Study>",
    ]
    return "".join(parts)


def _study_and_protocol() -> list[str]:
    return [
        f'<Study OID="{STUDY_OID}"><GlobalVariables>',
        "<StudyName>UC-MSC for liver cirrhosis</StudyName>",
        "<StudyDescription>Umbilical-cord mesenchymal stem cell infusions for liver "
        "cirrhosis: 320 participants, two non-randomised arms, six sites, 3-year "
        "follow-up</StudyDescription>",
        f"<ProtocolName>{STUDY_OID}</ProtocolName></GlobalVariables>",
        f'<MetaDataVersion OID="{MDV_OID}" Name="Symptom diary export"'
        f" Description={attr(DIARY_NAME + '; not the NCI PRO-CTCAE')}>",
        '<Protocol><StudyEventRef StudyEventOID="SE.DIARY" Mandatory="No"/>',
        *(f'<StudyEventRef StudyEventOID="{oid}" Mandatory="No"/>' for oid in EVENT_OIDS.values()),
        "</Protocol>",
    ]


def _event_defs(study: StudyConfig) -> list[str]:
    parts = [
        '<StudyEventDef OID="SE.DIARY" Name="Diary day" Repeating="Yes" Type="Common"'
        f" Category={attr(DIARY_CATEGORY)}>"
        '<FormRef FormOID="F.DIARY" Mandatory="Yes"/></StudyEventDef>',
    ]
    for kind, oid in EVENT_OIDS.items():
        parts.append(
            f'<StudyEventDef OID="{oid}" Name="{EVENT_NAMES[kind]}" Repeating="Yes"'
            ' Type="Scheduled">'
            f'<Description><TranslatedText xml:lang="en">{text(_event_description(study, kind))}'
            "</TranslatedText></Description>"
            '<FormRef FormOID="F.VISIT" Mandatory="Yes"/></StudyEventDef>'
        )
    return parts


def _form_and_group_defs() -> list[str]:
    return [
        f'<FormDef OID="F.DIARY" Name={attr(DIARY_NAME)} Repeating="No">'
        '<ItemGroupRef ItemGroupOID="IG.DIARY" Mandatory="Yes"/></FormDef>',
        '<FormDef OID="F.VISIT" Name="Scheduled visit" Repeating="No">'
        '<ItemGroupRef ItemGroupOID="IG.VISIT" Mandatory="Yes"/></FormDef>',
        '<ItemGroupDef OID="IG.DIARY" Name="Diary entry" Repeating="No">',
        *(
            f'<ItemRef ItemOID="{oid}" OrderNumber="{n}"'
            f' Mandatory="{"No" if f == "note" else "Yes"}"/>'
            for n, (f, oid) in enumerate(VALUE_ITEMS, start=1)
        ),
        "</ItemGroupDef>",
        '<ItemGroupDef OID="IG.VISIT" Name="Visit" Repeating="No">'
        '<ItemRef ItemOID="IT.TARGETDT" OrderNumber="1" Mandatory="Yes"/>'
        '<ItemRef ItemOID="IT.ACTUALDT" OrderNumber="2" Mandatory="No"/>'
        '<ItemRef ItemOID="IT.VISSTAT" OrderNumber="3" Mandatory="Yes"/></ItemGroupDef>',
    ]


def _item_defs() -> list[str]:
    parts = [
        _item_def(
            "IT.DIARYDAT",
            "diary_date",
            "date",
            None,
            "Diary day (participant's local day)",
            "日记日期（受试者当地日期）",
        ),
    ]
    for item in ITEMS:
        parts.append(
            _item_def(
                f"IT.{item.testcd}",
                item.field,
                "integer",
                "1",
                item.question_en,
                item.question_zh,
                f"CL.{item.scale.upper()}",
            )
        )
    parts += [
        _item_def("IT.NOTE", "note", "text", "1000", "Note (optional free text)", "备注（可选）"),
        _item_def(
            "IT.RECORDED",
            "recorded_at",
            "datetime",
            None,
            "When the participant completed it on the phone",
            "受试者在手机上完成的时间",
        ),
        _item_def("IT.TARGETDT", "target_date", "date", None, "Target day", "目标日期"),
        _item_def("IT.ACTUALDT", "actual_date", "date", None, "Actual day", "实际日期"),
        _item_def("IT.VISSTAT", "status", "text", "20", "Status", "状态"),
    ]
    return parts


def _code_lists() -> list[str]:
    parts = []
    for key, scale in SCALES.items():
        parts.append(f'<CodeList OID="CL.{key.upper()}" Name="{key} 0-4" DataType="integer">')
        for code, (en, zh) in enumerate(scale):
            parts.append(
                f'<CodeListItem CodedValue="{code}"><Decode>{_translated(en, zh)}</Decode>'
                "</CodeListItem>"
            )
        parts.append("</CodeList>")
    return parts


def _item_def(
    oid: str,
    name: str,
    data_type: str,
    length: str | None,
    en: str,
    zh: str,
    code_list: str | None = None,
) -> str:
    length_attr = f' Length="{length}"' if length else ""
    ref = f'<CodeListRef CodeListOID="{code_list}"/>' if code_list else ""
    return (
        f'<ItemDef OID="{oid}" Name="{name}" DataType="{data_type}"{length_attr}>'
        f"<Question>{_translated(en, zh)}</Question>{ref}</ItemDef>"
    )


def _translated(en: str, zh: str) -> str:
    return (
        f'<TranslatedText xml:lang="en">{text(en)}</TranslatedText>'
        f'<TranslatedText xml:lang="zh-CN">{text(zh)}</TranslatedText>'
    )


def _event_description(study: StudyConfig, kind: str) -> str:
    for plan in study.events:
        if plan.kind == kind:
            months = ", ".join(str(m) for m in plan.months)
            arms = ", ".join(plan.arms)
            window = study.visit_window_days
            return f"Months {months} after enrolment (arms: {arms}); window ±{window} days"
    return "Not planned by the study configuration"
