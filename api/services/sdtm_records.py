"""SDTM queries and record makers: each yields one dataset's rows for one batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import Select, select

from api.models import AdverseEvent, DiaryEntry, Participant, ScheduleEvent, Site
from api.services.sdtm_datasets import (
    AE,
    AEOUT,
    AEREL,
    DM,
    QS,
    SUPPQS,
    SV,
    VISIT_BASE,
    VISIT_NAME,
    Dataset,
    study_day,
    usubjid,
)
from api.services.sdtm_qs import QsRows
from api.services.standards import ITEMS, STUDY_ID
from api.study import StudyConfig

P = Participant.__table__
S = Site.__table__
D = DiaryEntry.__table__
A = AdverseEvent.__table__
SE = ScheduleEvent.__table__


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _dm_rows(study: StudyConfig) -> Callable[[list[Any]], Iterable[tuple[Any, ...]]]:
    def rows(batch: list[Any]) -> Iterator[tuple[Any, ...]]:
        for _, code, site, arm, enrolled, status, changed_on in batch:
            end = str(changed_on) if status != "active" and changed_on else ""
            arm_name = study.arms.get(arm, arm)[:60]
            yield (
                STUDY_ID,
                "DM",
                usubjid(code),
                code,
                str(enrolled),
                end,
                site,
                "Y" if status == "deceased" else "",
                arm.upper(),
                arm_name,
                arm.upper(),
                arm_name,
                "CHN",
            )

    return rows


def _dm_query(site_ids: list[int]) -> tuple[Select[Any], tuple[Any, ...]]:
    stmt = (
        select(
            P.c.id,
            P.c.study_code,
            S.c.code,
            P.c.arm,
            P.c.enrolled_on,
            P.c.status,
            P.c.status_changed_on,
        )
        .join(S, S.c.id == P.c.site_id)
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id)
    )
    return stmt, (P.c.id,)


def _entries_query(
    site_ids: list[int], late_only: bool = False
) -> tuple[Select[Any], tuple[Any, ...]]:
    stmt = (
        select(
            P.c.id,
            P.c.study_code,
            P.c.enrolled_on,
            D.c.id,
            D.c.diary_date,
            *(D.c[i.field] for i in ITEMS),
            D.c.late,
        )
        .select_from(D.join(P, P.c.id == D.c.participant_id))
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id, D.c.diary_date)
    )
    if late_only:
        stmt = stmt.where(D.c.late.is_(True))
    return stmt, (P.c.id, D.c.diary_date)


def _suppqs_rows(batch: list[Any]) -> Iterator[tuple[Any, ...]]:
    for row in batch:
        yield (
            STUDY_ID,
            "QS",
            usubjid(row[1]),
            "QSGRPID",
            f"E{row[3]}",
            "QSLATE",
            "Entered After the Diary Day Ended",
            "Y",
            "Derived",
        )


def _ae_query(site_ids: list[int]) -> tuple[Select[Any], tuple[Any, ...]]:
    stmt = (
        select(
            P.c.id,
            A.c.id,
            P.c.study_code,
            P.c.enrolled_on,
            A.c.term,
            A.c.onset_date,
            A.c.grade,
            A.c.seriousness,
            A.c.relation_to_infusion,
            A.c.outcome,
        )
        .select_from(A.join(P, P.c.id == A.c.participant_id))
        .where(P.c.site_id.in_(site_ids))
        .order_by(P.c.id, A.c.id)
    )
    return stmt, (P.c.id, A.c.id)


class _AeRows:
    def __init__(self) -> None:
        self.subject: int | None = None
        self.seq = 0

    def __call__(self, batch: list[Any]) -> Iterator[tuple[Any, ...]]:
        for pid, ae_id, code, enrolled, term, onset, grade, criteria, relation, outcome in batch:
            if pid != self.subject:
                self.subject, self.seq = pid, 0
            self.seq += 1
            criteria = set(criteria or ())
            yield (
                STUDY_ID,
                "AE",
                usubjid(code),
                self.seq,
                f"AE{ae_id}",
                term,
                str(onset),
                study_day(onset, enrolled),
                str(grade),
                _yn(bool(criteria)),
                _yn("fatal" in criteria),
                _yn("life_threatening" in criteria),
                _yn("permanently_disabling" in criteria),
                _yn("tumour" in criteria),
                AEREL.get(relation, relation.upper()),
                AEOUT.get(outcome, outcome.upper()),
            )


def _sv_query(site_ids: list[int]) -> tuple[Select[Any], tuple[Any, ...]]:
    stmt = (
        select(P.c.id, SE.c.kind, SE.c.number, P.c.study_code, P.c.enrolled_on, SE.c.actual_date)
        .join(P, P.c.id == SE.c.participant_id)
        .where(P.c.site_id.in_(site_ids), SE.c.actual_date.is_not(None))
        .order_by(P.c.id, SE.c.kind, SE.c.number)
    )
    return stmt, (P.c.id, SE.c.kind, SE.c.number)


def _sv_rows(batch: list[Any]) -> Iterator[tuple[Any, ...]]:
    for _, kind, number, code, enrolled, actual in batch:
        yield (
            STUDY_ID,
            "SV",
            usubjid(code),
            VISIT_BASE[kind] + number,
            f"{VISIT_NAME[kind]} {number}",
            str(actual),
            str(actual),
            study_day(actual, enrolled),
        )


def plans(study: StudyConfig, site_ids: list[int]) -> list[tuple[Dataset, Any, Any]]:
    """Each dataset of the zip, in order, with its (query, keys) and record maker."""
    return [
        (DM, _dm_query(site_ids), _dm_rows(study)),
        (QS, _entries_query(site_ids), QsRows()),
        (SUPPQS, _entries_query(site_ids, late_only=True), _suppqs_rows),
        (AE, _ae_query(site_ids), _AeRows()),
        (SV, _sv_query(site_ids), _sv_rows),
    ]
