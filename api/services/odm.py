"""CDISC ODM 1.3.2: the diary with its whole audit trail, as a transactional file.

The document is written as text, row batch by row batch (see `exports.row_batches`),
never built as a tree: memory stays flat however many entries there are. Only the
participants of the export (one `User` and one `SubjectData` each) are held, a list
bounded by enrolment (320 in this trial), not by the data.

Each diary entry is a study event `SE.DIARY` whose repeat key is its (current) diary
day. Every version of the entry is one `ItemGroupData` of the day's form: version 1 is
an `Insert` of every item, each later version an `Update` of the items it changed (a
cleared note is a `Remove`), and each carries an `AuditRecord` for its values: who
(`UserRef`), at which site (`LocationRef`), when the server stored it
(`DateTimeStamp`), why (`ReasonForChange`, the amendment's mandatory reason) and from
where (`SourceID`: the participant's phone or the site's staff, with entry and version).
The schedule's events follow each participant's diary as `SE.INFUSION`,
`SE.LAB_VISIT` and `SE.FOLLOW_UP` (target day, actual day, status; no audit trail of
their own in this file).
"""

# ruff: noqa: RUF001 (Chinese text keeps its full-width punctuation)

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Select, String, and_, cast, select

from api.models import DiaryEntry, DiaryEntryVersion, Participant, ScheduleEvent, Site, StaffUser
from api.services.exports import row_batches
from api.services.sqldates import local_iso_text, utc_text
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

NS = "http://www.cdisc.org/ns/odm/v1.3"
MDV_OID = "MDV.1"
EVENT_OIDS = {"infusion": "SE.INFUSION", "lab_visit": "SE.LAB_VISIT", "follow_up": "SE.FOLLOW_UP"}
EVENT_NAMES = {"infusion": "UC-MSC infusion", "lab_visit": "Lab visit", "follow_up": "Follow-up"}
STAFF_USER_TYPES = {"coordinator": "Investigator", "monitor": "Sponsor", "admin": "Other"}
VALUE_ITEMS = (
    ("diary_date", "IT.DIARYDAT"),
    *((item.field, f"IT.{item.testcd}") for item in ITEMS),
    ("note", "IT.NOTE"),
    ("recorded_at", "IT.RECORDED"),
)

V = DiaryEntryVersion.__table__
E = DiaryEntry.__table__
P = Participant.__table__
S = Site.__table__
SE = ScheduleEvent.__table__
U = StaffUser.__table__


def versions_query(site_ids: list[int], from_: date | None, to: date | None) -> Select[Any]:
    """Every version of every entry in the scope, entry by entry, oldest version first.

    The days and the two instants arrive as ready-made text (the device time at its
    recorded offset, the server's time as UTC): formatting them in Python took about
    half of the export's time, and the database does it for almost nothing.
    """
    stmt = (
        select(
            P.c.id,
            E.c.id,
            cast(E.c.diary_date, String),
            V.c.version,
            cast(V.c.diary_date, String),
            *(V.c[item.field] for item in ITEMS),
            V.c.note,
            local_iso_text(V.c.recorded_at, V.c.recorded_offset_minutes),
            V.c.recorded_offset_minutes,
            V.c.source,
            V.c.actor_type,
            V.c.actor_id,
            utc_text(V.c.at),
            V.c.reason,
            P.c.study_code,
        )
        .select_from(V.join(E, E.c.id == V.c.entry_id).join(P, P.c.id == E.c.participant_id))
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id, E.c.diary_date, V.c.version)
    )
    return _days(stmt, from_, to)


def _days(stmt: Select[Any], from_: date | None, to: date | None) -> Select[Any]:
    if from_:
        stmt = stmt.where(E.c.diary_date >= from_)
    if to:
        stmt = stmt.where(E.c.diary_date <= to)
    return stmt


def version_keys() -> tuple[Any, ...]:
    return (P.c.id, E.c.diary_date, V.c.version)


def _participants(engine: Engine, site_ids: list[int]) -> list[Any]:
    stmt = (
        select(P.c.id, P.c.study_code, S.c.code)
        .join(S, S.c.id == P.c.site_id)
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id)
    )
    with engine.connect() as conn:
        return list(conn.execute(stmt))


def _staff_actors(
    engine: Engine, site_ids: list[int], from_: date | None, to: date | None
) -> list[Any]:
    """The staff who made a version in the scope (their id and role; nothing personal)."""
    stmt = _days(
        select(U.c.id, U.c.role)
        .distinct()
        .select_from(
            V.join(U, and_(V.c.actor_type == "staff", U.c.id == V.c.actor_id))
            .join(E, E.c.id == V.c.entry_id)
            .join(P, P.c.id == E.c.participant_id)
        )
        .where(P.c.site_id.in_(site_ids)),
        from_,
        to,
    ).order_by(U.c.id)
    with engine.connect() as conn:
        return list(conn.execute(stmt))


def _sites(engine: Engine, site_ids: list[int]) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(S.c.code, S.c.name).where(S.c.id.in_(site_ids)).order_by(S.c.code))
        )


def _schedule_query(site_ids: list[int]) -> Select[Any]:
    return (
        select(
            SE.c.participant_id,
            SE.c.kind,
            SE.c.number,
            SE.c.target_date,
            SE.c.actual_date,
            SE.c.status,
        )
        .join(P, P.c.id == SE.c.participant_id)
        .where(P.c.site_id.in_(site_ids))
        .order_by(SE.c.participant_id, SE.c.kind, SE.c.number)
    )


def stream_odm(
    engine: Engine,
    study: StudyConfig,
    site_ids: list[int],
    from_: date | None,
    to: date | None,
    now: datetime,
) -> Iterator[str]:
    """Yield the ODM document in chunks: metadata, admin data, then subject by subject."""
    participants = _participants(engine, site_ids)
    yield _header(study, now)
    yield _metadata(study)
    yield _admin_data(
        participants, _staff_actors(engine, site_ids, from_, to), _sites(engine, site_ids), now
    )
    yield f'<ClinicalData StudyOID="{STUDY_OID}" MetaDataVersionOID="{MDV_OID}">'
    yield from _clinical_data(engine, participants, site_ids, from_, to)
    yield "</ClinicalData></ODM>\n"


def _header(study: StudyConfig, now: datetime) -> str:
    stamp = now.astimezone(UTC).isoformat()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ODM xmlns="{NS}" FileType="Transactional" Granularity="All"'
        f' FileOID="{STUDY_OID}.{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"'
        f' CreationDateTime="{stamp}" ODMVersion="1.3.2" Originator="symptom-diary"'
        ' SourceSystem="symptom-diary">'
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


def _metadata(study: StudyConfig) -> str:
    parts = [
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
    parts += [
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
    for key, scale in SCALES.items():
        parts.append(f'<CodeList OID="CL.{key.upper()}" Name="{key} 0-4" DataType="integer">')
        for code, (en, zh) in enumerate(scale):
            parts.append(
                f'<CodeListItem CodedValue="{code}"><Decode>{_translated(en, zh)}</Decode>'
                "</CodeListItem>"
            )
        parts.append("</CodeList>")
    parts.append("</MetaDataVersion></Study>")
    return "".join(parts)


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


def participant_user(study_code: str) -> str:
    return f"USR.P.{study_code}"


def staff_user(staff_id: int) -> str:
    return f"USR.S.{staff_id}"


def _admin_data(participants: list[Any], staff: list[Any], sites: list[Any], now: datetime) -> str:
    parts = ["<AdminData>"]
    parts += [
        f'<User OID="{participant_user(p.study_code)}" UserType="Other"/>' for p in participants
    ]
    parts += [
        f'<User OID="{staff_user(s.id)}" UserType="{STAFF_USER_TYPES.get(s.role, "Other")}"/>'
        for s in staff
    ]
    effective = now.astimezone(UTC).date().isoformat()
    parts += [
        f'<Location OID="LOC.{s.code}" Name={attr(s.name)} LocationType="Site">'
        f'<MetaDataVersionRef StudyOID="{STUDY_OID}" MetaDataVersionOID="{MDV_OID}"'
        f' EffectiveDate="{effective}"/></Location>'
        for s in sites
    ]
    parts.append("</AdminData>")
    return "".join(parts)


class _Peekable:
    """Rows of a batched stream, one at a time, with a look at the next."""

    def __init__(self, batches: Iterator[Any]) -> None:
        self._rows = (row for batch in batches for row in batch)
        self.head: Any = next(self._rows, None)

    def pop(self) -> Any:
        row, self.head = self.head, next(self._rows, None)
        return row


def _clinical_data(
    engine: Engine,
    participants: list[Any],
    site_ids: list[int],
    from_: date | None,
    to: date | None,
) -> Iterator[str]:
    versions = _Peekable(row_batches(versions_query(site_ids, from_, to), engine, version_keys()))
    schedule = _Peekable(
        row_batches(
            _schedule_query(site_ids), engine, (SE.c.participant_id, SE.c.kind, SE.c.number)
        )
    )
    for participant in participants:
        parts = [
            f'<SubjectData SubjectKey={attr(participant.study_code)} TransactionType="Upsert">'
            f'<SiteRef LocationOID="LOC.{participant.code}"/>'
        ]
        user, location = participant_user(participant.study_code), f"LOC.{participant.code}"
        entry_id, previous = None, None
        while versions.head is not None and versions.head[0] == participant.id:
            row = versions.pop()
            if row[1] != entry_id:
                if entry_id is not None:
                    parts.append("</FormData></StudyEventData>")
                entry_id, previous = row[1], None
                parts.append(
                    f'<StudyEventData StudyEventOID="SE.DIARY" StudyEventRepeatKey="{row[2]}"'
                    ' TransactionType="Upsert">'
                    '<FormData FormOID="F.DIARY" TransactionType="Upsert">'
                )
            values = _values(row)
            parts.append(_version(row, values, previous, user, location))
            previous = values
            if len(parts) > 200:
                yield "".join(parts)
                parts = []
        if entry_id is not None:
            parts.append("</FormData></StudyEventData>")
        while schedule.head is not None and schedule.head[0] < participant.id:
            schedule.pop()  # a participant outside the list (enrolled meanwhile)
        while schedule.head is not None and schedule.head[0] == participant.id:
            parts.append(_visit(schedule.pop()))
        parts.append("</SubjectData>")
        yield "".join(parts)


# Insert items of the five scores, made once: (score index, value) → the element.
_SCORE_INSERTS = [
    [f'<ItemData ItemOID="{oid}" TransactionType="Insert" Value="{v}"/>' for v in range(5)]
    for _, oid in VALUE_ITEMS[1:6]
]


def _values(row: Any) -> tuple[Any, ...]:
    """The version's item values: the day, the five scores (integers), the note and
    the device time at its original offset (the day and the time as text, see
    `versions_query`)."""
    return tuple(row[4:12])


def _version(
    row: Any,
    values: tuple[Any, ...],
    previous: tuple[Any, ...] | None,
    user_of_participant: str,
    location: str,
) -> str:
    """One version as an ItemGroupData with its AuditRecord: all items for version 1
    (`Insert`), the changed ones after (`Update`, or `Remove` for a cleared note)."""
    version = row[3]
    source, actor_type, actor_id, at, reason = row[13:18]
    insert = previous is None
    user = staff_user(actor_id) if actor_type == "staff" else user_of_participant
    edit_point = ' EditPoint="DataManagement"' if actor_type == "staff" else ""
    why = f"<ReasonForChange>{text(reason)}</ReasonForChange>" if reason else ""
    head = (
        f'<ItemGroupData ItemGroupOID="IG.DIARY"'
        f' TransactionType="{"Insert" if insert else "Update"}">'
        f'<AuditRecord{edit_point}><UserRef UserOID="{user}"/>'
        f'<LocationRef LocationOID="{location}"/>'
        f"<DateTimeStamp>{at}</DateTimeStamp>{why}"
        f"<SourceID>{source} diary entry {row[1]} version {version}</SourceID></AuditRecord>"
    )
    if insert:
        day, *scores, note, recorded = values
        note_item = (
            f'<ItemData ItemOID="IT.NOTE" TransactionType="Insert" Value={attr(note)}/>'
            if note is not None
            else ""
        )
        return (
            f'{head}<ItemData ItemOID="IT.DIARYDAT" TransactionType="Insert" Value="{day}"/>'
            + "".join(_SCORE_INSERTS[i][score] for i, score in enumerate(scores))
            + note_item
            + f'<ItemData ItemOID="IT.RECORDED" TransactionType="Insert" Value="{recorded}"/>'
            "</ItemGroupData>"
        )
    parts = [head]
    for index, (_, oid) in enumerate(VALUE_ITEMS):
        value = values[index]
        if previous is not None and previous[index] == value:
            continue
        if value is None:
            parts.append(f'<ItemData ItemOID="{oid}" TransactionType="Remove"/>')
            continue
        parts.append(f'<ItemData ItemOID="{oid}" TransactionType="Update" Value={attr(value)}/>')
    parts.append("</ItemGroupData>")
    return "".join(parts)


def _visit(row: Any) -> str:
    _, kind, number, target, actual, status = row
    actual_item = (
        f'<ItemData ItemOID="IT.ACTUALDT" TransactionType="Upsert" Value="{actual}"/>'
        if actual
        else ""
    )
    return (
        f'<StudyEventData StudyEventOID="{EVENT_OIDS[kind]}" StudyEventRepeatKey="{number}"'
        ' TransactionType="Upsert"><FormData FormOID="F.VISIT" TransactionType="Upsert">'
        '<ItemGroupData ItemGroupOID="IG.VISIT" TransactionType="Upsert">'
        f'<ItemData ItemOID="IT.TARGETDT" TransactionType="Upsert" Value="{target}"/>{actual_item}'
        f'<ItemData ItemOID="IT.VISSTAT" TransactionType="Upsert" Value="{status}"/>'
        "</ItemGroupData></FormData></StudyEventData>"
    )
