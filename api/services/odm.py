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

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, and_, select

from api.models import DiaryEntry, DiaryEntryVersion, Participant, Site, StaffUser
from api.services.odm_clinical import (
    clinical_data,
    participant_user,
    staff_user,
    version_keys,
    versions_query,
    within_days,
)
from api.services.odm_metadata import EVENT_NAMES, EVENT_OIDS, MDV_OID, VALUE_ITEMS, metadata
from api.services.standards import STUDY_OID, attr
from api.study import StudyConfig

__all__ = [
    "EVENT_NAMES",
    "EVENT_OIDS",
    "MDV_OID",
    "NS",
    "STAFF_USER_TYPES",
    "VALUE_ITEMS",
    "participant_user",
    "staff_user",
    "stream_odm",
    "version_keys",
    "versions_query",
]

NS = "http://www.cdisc.org/ns/odm/v1.3"
STAFF_USER_TYPES = {"coordinator": "Investigator", "monitor": "Sponsor", "admin": "Other"}

V = DiaryEntryVersion.__table__
E = DiaryEntry.__table__
P = Participant.__table__
S = Site.__table__
U = StaffUser.__table__


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
    stmt = within_days(
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
    yield metadata(study)
    yield _admin_data(
        participants, _staff_actors(engine, site_ids, from_, to), _sites(engine, site_ids), now
    )
    yield f'<ClinicalData StudyOID="{STUDY_OID}" MetaDataVersionOID="{MDV_OID}">'
    yield from clinical_data(engine, participants, site_ids, from_, to)
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
