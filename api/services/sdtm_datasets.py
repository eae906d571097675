"""The SDTM datasets of the export: their variables, labels, roles and controlled terms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from api.services import xpt
from api.services.standards import STUDY_ID

SDTMIG_VERSION = "3.3"

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


def study_day(day: date, reference: date) -> int:
    """SDTM study day: day 1 is the reference day, there is no day 0."""
    delta = (day - reference).days
    return delta + 1 if delta >= 0 else delta
