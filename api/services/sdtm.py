"""SDTM tabulation datasets (SDTMIG 3.3) with Define-XML 2.1, streamed as one zip.

Datasets: DM (one record per participant), QS (one record per item per diary entry:
the trial's own diary, category `DIARY_CATEGORY`, never PRO-CTCAE), SUPPQS (late
entries flagged by `QSLATE`), AE (seriousness criteria AESER, AESDTH, AESLIFE,
AESDISAB and the protocol's tumour criterion as AESCAN, "Involves Cancer", a
permissible SDTMIG 3.3 variable) and SV (the schedule's events that took place).

How it streams: the zip is written to the response as it is made (entries with data
descriptors, zip64). Each dataset is read once in row batches; its XPT (see `xpt`) goes
straight into the zip while the same rows are written as CSV to a temporary file
(spooled to disk past a few MB), which is copied into the zip right after. So a
dataset is never held whole: memory is one batch, whatever the number of rows.
"""

from __future__ import annotations

import csv
import functools
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import IO, Any

from sqlalchemy import Engine, Select, select

from api.models import AdverseEvent, DiaryEntry, Participant, ScheduleEvent, Site
from api.services import xpt
from api.services.exports import row_batches
from api.services.standards import DIARY_CATEGORY, ITEMS, RECALL, SCALES, STUDY_ID
from api.study import StudyConfig

SDTMIG_VERSION = "3.3"
P = Participant.__table__
S = Site.__table__
D = DiaryEntry.__table__
A = AdverseEvent.__table__
SE = ScheduleEvent.__table__

AEREL = {
    "not_related": "NOT RELATED",
    "unlikely": "UNLIKELY RELATED",
    "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED",
    "definite": "RELATED",
}
AEOUT = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "recovered_with_sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
VISIT_BASE = {"infusion": 100, "lab_visit": 200, "follow_up": 300}
VISIT_NAME = {"infusion": "INFUSION", "lab_visit": "LAB VISIT", "follow_up": "FOLLOW-UP"}


@dataclass(frozen=True)
class Var:
    name: str
    label: str
    numeric: bool
    length: int
    origin: str  # Define-XML def:Origin Type
    role: str  # SDTM role, for define.xml's documentation

    def xpt(self) -> xpt.Variable:
        return xpt.Variable(self.name, self.label, self.numeric, 8 if self.numeric else self.length)


def _c(name: str, label: str, length: int, origin: str = "Collected", role: str = "") -> Var:
    return Var(name, label, False, length, origin, role)


def _n(name: str, label: str, origin: str = "Derived", role: str = "") -> Var:
    return Var(name, label, True, 8, origin, role)


STUDYID = _c("STUDYID", "Study Identifier", 8, "Assigned", "Identifier")
USUBJID = _c("USUBJID", "Unique Subject Identifier", 30, "Derived", "Identifier")


def _domain(length: int = 2) -> Var:
    return _c("DOMAIN", "Domain Abbreviation", length, "Assigned", "Identifier")


@dataclass(frozen=True)
class Dataset:
    name: str
    label: str
    cls: str  # SDTM class
    structure: str
    keys: tuple[str, ...]
    variables: tuple[Var, ...]


DM = Dataset(
    "DM",
    "Demographics",
    "SPECIAL PURPOSE",
    "One record per subject",
    ("STUDYID", "USUBJID"),
    (
        STUDYID,
        _domain(),
        USUBJID,
        _c("SUBJID", "Subject Identifier for the Study", 20, "Assigned", "Topic"),
        _c("RFSTDTC", "Subject Reference Start Date/Time", 10, "Derived", "Record Qualifier"),
        _c("RFENDTC", "Subject Reference End Date/Time", 10, "Derived", "Record Qualifier"),
        _c("SITEID", "Study Site Identifier", 10, "Assigned", "Record Qualifier"),
        _c("DTHFL", "Subject Death Flag", 1, "Derived", "Record Qualifier"),
        _c("ARMCD", "Planned Arm Code", 8, "Assigned", "Record Qualifier"),
        _c("ARM", "Description of Planned Arm", 60, "Assigned", "Synonym Qualifier"),
        _c("ACTARMCD", "Actual Arm Code", 8, "Assigned", "Record Qualifier"),
        _c("ACTARM", "Description of Actual Arm", 60, "Assigned", "Synonym Qualifier"),
        _c("COUNTRY", "Country", 3, "Assigned", "Record Qualifier"),
    ),
)
QS = Dataset(
    "QS",
    "Questionnaires",
    "FINDINGS",
    "One record per questionnaire per question per time point per visit per subject",
    ("STUDYID", "USUBJID", "QSCAT", "QSTESTCD", "QSDTC"),
    (
        STUDYID,
        _domain(),
        USUBJID,
        _n("QSSEQ", "Sequence Number", role="Identifier"),
        _c("QSGRPID", "Group ID", 20, "Assigned", "Identifier"),
        _c("QSTESTCD", "Question Short Name", 8, "Assigned", "Topic"),
        _c("QSTEST", "Question Name", 40, "Assigned", "Synonym Qualifier"),
        _c("QSCAT", "Category of Question", 40, "Assigned", "Grouping Qualifier"),
        _c("QSORRES", "Finding in Original Units", 60, "Collected", "Result Qualifier"),
        _c("QSSTRESC", "Character Result/Finding in Std Format", 8, "Derived", "Result Qualifier"),
        _n("QSSTRESN", "Numeric Finding in Standard Units", role="Result Qualifier"),
        _c("QSDTC", "Date/Time of Finding", 10, "Collected", "Timing"),
        _n("QSDY", "Study Day of Finding", role="Timing"),
        _c("QSEVLINT", "Evaluation Interval", 10, "Assigned", "Timing"),
    ),
)
SUPPQS = Dataset(
    "SUPPQS",
    "Supplemental Qualifiers for QS",
    "RELATIONSHIP",
    "One record per IDVAR, IDVARVAL, and QNAM value per subject",
    ("STUDYID", "RDOMAIN", "USUBJID", "IDVAR", "IDVARVAL", "QNAM"),
    (
        STUDYID,
        _c("RDOMAIN", "Related Domain Abbreviation", 2, "Assigned", "Identifier"),
        USUBJID,
        _c("IDVAR", "Identifying Variable", 8, "Assigned", "Identifier"),
        _c("IDVARVAL", "Identifying Variable Value", 20, "Assigned", "Identifier"),
        _c("QNAM", "Qualifier Variable Name", 8, "Assigned", "Topic"),
        _c("QLABEL", "Qualifier Variable Label", 40, "Assigned", "Synonym Qualifier"),
        _c("QVAL", "Data Value", 1, "Derived", "Result Qualifier"),
        _c("QORIG", "Origin", 8, "Assigned", "Record Qualifier"),
    ),
)
AE = Dataset(
    "AE",
    "Adverse Events",
    "EVENTS",
    "One record per adverse event per subject",
    ("STUDYID", "USUBJID", "AETERM", "AESTDTC"),
    (
        STUDYID,
        _domain(),
        USUBJID,
        _n("AESEQ", "Sequence Number", role="Identifier"),
        _c("AESPID", "Sponsor-Defined Identifier", 20, "Assigned", "Identifier"),
        _c("AETERM", "Reported Term for the Adverse Event", 200, "Collected", "Topic"),
        _c("AESTDTC", "Start Date/Time of Adverse Event", 10, "Collected", "Timing"),
        _n("AESTDY", "Study Day of Start of Adverse Event", role="Timing"),
        _c("AETOXGR", "Standard Toxicity Grade", 1, "Collected", "Record Qualifier"),
        _c("AESER", "Serious Event", 1, "Derived", "Record Qualifier"),
        _c("AESDTH", "Results in Death", 1, "Collected", "Record Qualifier"),
        _c("AESLIFE", "Is Life Threatening", 1, "Collected", "Record Qualifier"),
        _c(
            "AESDISAB",
            "Persist or Signif Disability/Incapacity",
            1,
            "Collected",
            "Record Qualifier",
        ),
        _c("AESCAN", "Involves Cancer", 1, "Collected", "Record Qualifier"),
        _c("AEREL", "Causality", 20, "Collected", "Record Qualifier"),
        _c("AEOUT", "Outcome of Adverse Event", 40, "Collected", "Record Qualifier"),
    ),
)
SV = Dataset(
    "SV",
    "Subject Visits",
    "SPECIAL PURPOSE",
    "One record per subject per actual visit",
    ("STUDYID", "USUBJID", "VISITNUM"),
    (
        STUDYID,
        _domain(),
        USUBJID,
        _n("VISITNUM", "Visit Number", "Assigned", "Topic"),
        _c("VISIT", "Visit Name", 40, "Assigned", "Synonym Qualifier"),
        _c("SVSTDTC", "Start Date/Time of Visit", 10, "Collected", "Timing"),
        _c("SVENDTC", "End Date/Time of Visit", 10, "Collected", "Timing"),
        _n("SVSTDY", "Study Day of Start of Visit", role="Timing"),
    ),
)
DATASETS = (DM, QS, SUPPQS, AE, SV)


def usubjid(study_code: str) -> str:
    return f"{STUDY_ID}-{study_code}"


def _study_day(day: date, reference: date) -> int:
    """SDTM study day: day 1 is the reference day, there is no day 0."""
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


# -- queries and record makers: each yields the dataset's rows for one batch ------------


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


class _QsRows:
    """QS records, numbered per subject (QSSEQ) across batches.

    QS is the big dataset (five records per diary entry), so besides the records
    (`__call__`, the generic path) it encodes a batch straight to XPT bytes and CSV text
    from pieces made once: the subject's identifiers, each item's test and answer
    columns, the entry's day columns. The result is byte for byte the generic one's.
    """

    def __init__(self) -> None:
        self.subject: int | None = None
        self.seq = 0
        self.answers = {
            (item.field, code): (en, str(code), code)
            for item in ITEMS
            for code, (en, _) in enumerate(SCALES[item.scale])
        }
        widths = {v.name: v.length for v in QS.variables}
        self._x = {name: functools.partial(xpt.char, width=w) for name, w in widths.items()}
        self._item_x: list[list[bytes]] = []
        self._item_c: list[list[str]] = []
        for item in ITEMS:
            xs, cs = [], []
            for code in range(len(SCALES[item.scale])):
                text, stresc, stresn = self.answers[(item.field, code)]
                xs.append(
                    self._x["QSTESTCD"](item.testcd)
                    + self._x["QSTEST"](item.test)
                    + self._x["QSCAT"](DIARY_CATEGORY)
                    + self._x["QSORRES"](text)
                    + self._x["QSSTRESC"](stresc)
                    + xpt.ibm_float(stresn)
                )
                cs.append(_csv_fields(item.testcd, item.test, DIARY_CATEGORY, text, stresc, stresn))
            self._item_x.append(xs)
            self._item_c.append(cs)
        self._recall_x = self._x["QSEVLINT"](RECALL)
        self._numbers: dict[int, bytes] = {}
        self._subject_x = b""
        self._subject_c = ""

    def _number(self, value: int) -> bytes:
        encoded = self._numbers.get(value)
        if encoded is None:
            encoded = self._numbers[value] = xpt.ibm_float(value)
        return encoded

    def __call__(self, batch: list[Any]) -> Iterator[tuple[Any, ...]]:
        for row in batch:
            pid, code, enrolled, entry_id, day = row[:5]
            if pid != self.subject:
                self.subject, self.seq = pid, 0
            subject, group, dtc = usubjid(code), f"E{entry_id}", str(day)
            study_day = _study_day(day, enrolled)
            for item, score in zip(ITEMS, row[5:10], strict=True):
                self.seq += 1
                text, stresc, stresn = self.answers[(item.field, score)]
                yield (
                    STUDY_ID, "QS", subject, self.seq, group, item.testcd, item.test,
                    DIARY_CATEGORY, text, stresc, stresn, dtc, study_day, RECALL,
                )  # fmt: skip

    def encode_batch(self, batch: list[Any]) -> tuple[bytes, str]:
        """One batch as (XPT observations, CSV lines)."""
        xs: list[bytes] = []
        cs: list[str] = []
        x = self._x
        for row in batch:
            pid, code, enrolled, entry_id, day = row[:5]
            if pid != self.subject:
                self.subject, self.seq = pid, 0
                subject = usubjid(code)
                self._subject_x = x["STUDYID"](STUDY_ID) + x["DOMAIN"]("QS") + x["USUBJID"](subject)
                self._subject_c = _csv_fields(STUDY_ID, "QS", subject)
            group, dtc = f"E{entry_id}", str(day)
            study_day = _study_day(day, enrolled)
            group_x = x["QSGRPID"](group)
            tail_x = x["QSDTC"](dtc) + self._number(study_day) + self._recall_x
            for index, score in enumerate(row[5:10]):
                self.seq += 1
                xs += [self._subject_x, self._number(self.seq), group_x,
                       self._item_x[index][score], tail_x]  # fmt: skip
                cs.append(
                    f"{self._subject_c},{self.seq},{group},{self._item_c[index][score]},"
                    f"{dtc},{study_day},{RECALL}\n"
                )
        return b"".join(xs), "".join(cs)


def _csv_fields(*values: object) -> str:
    """Values as one CSV fragment (quoted where the csv module would quote them)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


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
                _study_day(onset, enrolled),
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
            _study_day(actual, enrolled),
        )


# -- the zip ---------------------------------------------------------------------------


class _Sink:
    """A write-only file whose bytes are collected and taken out by the generator."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Part of the file protocol `ZipFile` types; it never closes a file it was given."""

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def _plans(study: StudyConfig, site_ids: list[int]) -> list[tuple[Dataset, Any, Any]]:
    return [
        (DM, _dm_query(site_ids), _dm_rows(study)),
        (QS, _entries_query(site_ids), _QsRows()),
        (SUPPQS, _entries_query(site_ids, late_only=True), _suppqs_rows),
        (AE, _ae_query(site_ids), _AeRows()),
        (SV, _sv_query(site_ids), _sv_rows),
    ]


def stream_zip(
    engine: Engine, study: StudyConfig, site_ids: list[int], now: datetime
) -> Iterator[bytes]:
    """Yield the zip in chunks: each dataset as XPT and CSV, then define.xml."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for dataset, (stmt, keys), make_rows in _plans(study, site_ids):
            with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
                yield from _write_dataset(
                    zf, sink, dataset, row_batches(stmt, engine, keys), make_rows, spool, now
                )
                spool.seek(0)
                with zf.open(f"{dataset.name.lower()}.csv", "w", force_zip64=True) as out:
                    while block := spool.read(1024 * 1024):
                        out.write(block)
                        yield sink.take()
        with zf.open("define.xml", "w") as out:
            out.write(define_xml(study, now).encode("utf-8"))
    yield sink.take()


def _write_dataset(
    zf: zipfile.ZipFile,
    sink: _Sink,
    dataset: Dataset,
    batches: Iterator[list[Any]],
    make_rows: Callable[[list[Any]], Iterable[tuple[Any, ...]]],
    spool: IO[bytes],
    now: datetime,
) -> Iterator[bytes]:
    variables = tuple(v.xpt() for v in dataset.variables)
    encode = xpt.record_writer(variables)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([v.name for v in dataset.variables])
    written = 0
    with zf.open(f"{dataset.name.lower()}.xpt", "w", force_zip64=True) as out:
        out.write(xpt.header(dataset.name, dataset.label, variables, now))
        fast = getattr(make_rows, "encode_batch", None)
        for batch in batches:
            if fast is not None:
                data, lines = fast(batch)
                text.write(lines)
            else:
                records = list(make_rows(batch))
                data = b"".join(encode(record) for record in records)
                writer.writerows(records)
            written += len(data)
            out.write(data)
            spool.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
            yield sink.take()
        out.write(xpt.trailer(written))
    spool.write(text.getvalue().encode("utf-8"))
    yield sink.take()


# -- define.xml ------------------------------------------------------------------------


def define_xml(study: StudyConfig, now: datetime) -> str:
    """Define-XML 2.1 describing the datasets of the zip."""
    from api.services.define import render

    return render(study, now.astimezone(UTC))
