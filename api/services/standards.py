"""What the standard exports share: the diary's items, their scales, names and codes.

The diary is the trial's own instrument in the PRO-CTCAE *style* (one item per symptom,
a daily recall, a protocol grade), not the NCI's PRO-CTCAE: every export names it
`DIARY_CATEGORY` and none calls it PRO-CTCAE.
"""

# ruff: noqa: RUF001 (Chinese text keeps its full-width punctuation)

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

STUDY_OID = "UCMSC-LC"
STUDY_ID = "UCMSC-LC"
DIARY_CATEGORY = "UC-MSC LIVER CIRRHOSIS SYMPTOM DIARY"
DIARY_NAME = "UC-MSC liver cirrhosis daily symptom diary (the trial's own instrument)"
RECALL = "-PT24H"  # ISO 8601: the last 24 hours
FHIR_BASE = "urn:uc-msc-lc"
QUESTIONNAIRE_URL = f"{FHIR_BASE}:questionnaire:symptom-diary"


@dataclass(frozen=True)
class Item:
    field: str  # the diary entry's column
    testcd: str  # SDTM QSTESTCD (<= 8 characters)
    test: str  # SDTM QSTEST (<= 40 characters)
    question_en: str
    question_zh: str
    scale: str  # code list key


SEVERITY = (
    ("none", "无"),
    ("mild", "轻度"),
    ("moderate", "中度"),
    ("severe", "重度"),
    ("very severe", "极重度"),
)
DISCOMFORT = (
    ("no discomfort", "无不适"),
    ("slightly unwell, does not affect daily life", "轻微不适，不影响日常生活"),
    ("moderate discomfort, affects daily life and work", "中度不适，影响日常生活和工作"),
    (
        "moderately unwell, significantly affects life, bed rest",
        "明显不适，严重影响生活，需卧床休息",
    ),
    ("severely unwell, life-threatening", "严重不适，危及生命"),
)
SCALES = {"severity": SEVERITY, "discomfort": DISCOMFORT}

ITEMS = (
    Item(
        "abdominal_distension",
        "ABDDIST",
        "Abdominal Distension Severity",
        "Abdominal distension in the last 24 hours",
        "过去24小时腹胀程度",
        "severity",
    ),
    Item(
        "decreased_appetite",
        "DECAPPET",
        "Decreased Appetite Severity",
        "Decreased appetite in the last 24 hours",
        "过去24小时食欲减退程度",
        "severity",
    ),
    Item(
        "debilitation",
        "DEBILIT",
        "Debilitation Severity",
        "Weakness or fatigue (debilitation) in the last 24 hours",
        "过去24小时乏力程度",
        "severity",
    ),
    Item(
        "leg_edema",
        "LEGEDEMA",
        "Lower Limb Edema Severity",
        "Swelling of the lower limbs in the last 24 hours",
        "过去24小时下肢水肿程度",
        "severity",
    ),
    Item(
        "discomfort_grade",
        "DISCGRD",
        "Discomfort Grade",
        "Overall discomfort in the last 24 hours (protocol grade)",
        "过去24小时总体不适程度（方案分级）",
        "discomfort",
    ),
)
ITEM_BY_FIELD = {item.field: item for item in ITEMS}

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def text(value: object) -> str:
    """Element text: escaped, with the characters XML 1.0 cannot carry dropped."""
    return escape(_NOT_XML.sub("", str(value)))


def attr(value: object) -> str:
    """A quoted attribute value, escaped the same way."""
    return quoteattr(_NOT_XML.sub("", str(value)))
