"""Define-XML 2.1 for the SDTM zip: datasets, variables, origins and code lists.

It says in so many words (the QSCAT comment, the study description) that the diary is
the trial's own instrument in the PRO-CTCAE style, not the NCI's PRO-CTCAE.
"""

from __future__ import annotations

from datetime import datetime

from api.services import sdtm
from api.services.standards import DIARY_CATEGORY, DIARY_NAME, ITEMS, SCALES, STUDY_ID, attr, text
from api.study import StudyConfig

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
NOT_PRO_CTCAE = (
    f"{DIARY_CATEGORY}: {DIARY_NAME}. Daily recall of the last 24 hours; four symptoms on "
    "a 0-4 scale in the PRO-CTCAE style and the protocol's discomfort grade. It is not the "
    "NCI PRO-CTCAE instrument and is not scored as such."
)
CODE_LISTS = {
    "QSTESTCD": [(item.testcd, item.test) for item in ITEMS],
    "QSCAT": [(DIARY_CATEGORY, DIARY_NAME)],
    "NY": [("N", "No"), ("Y", "Yes")],
    "AEOUT": [(v, v) for v in sdtm.AEOUT.values()],
    "AEREL": [(v, v) for v in sdtm.AEREL.values()],
}
CODED = {
    ("QS", "QSTESTCD"): "QSTESTCD",
    ("QS", "QSCAT"): "QSCAT",
    ("AE", "AESER"): "NY",
    ("AE", "AESDTH"): "NY",
    ("AE", "AESLIFE"): "NY",
    ("AE", "AESDISAB"): "NY",
    ("AE", "AESCAN"): "NY",
    ("AE", "AEOUT"): "AEOUT",
    ("AE", "AEREL"): "AEREL",
}
COMMENTS = {
    ("QS", "QSCAT"): NOT_PRO_CTCAE,
    ("QS", "QSDTC"): "The diary day the entry describes (the participant's local day).",
    ("QS", "QSORRES"): "English wording of the answer: "
    + "; ".join(f"{n} {en}" for n, (en, _) in enumerate(SCALES["severity"]))
    + " (symptoms); the protocol's discomfort grade wording for DISCGRD.",
    ("AE", "AESCAN"): "The protocol's seriousness criterion 'tumour (particularly "
    "hepatocellular carcinoma)'.",
    ("SUPPQS", "QNAM"): "QSLATE: the entry was submitted after its diary day ended "
    "(local midnight).",
    ("DM", "RFSTDTC"): "Enrolment day.",
    ("DM", "RFENDTC"): "Day of withdrawal, completion or death; blank while active.",
}


def _tt(value: str) -> str:
    return (
        f'<Description><TranslatedText xml:lang="en">{text(value)}</TranslatedText></Description>'
    )


def _oid(dataset: sdtm.Dataset, var: sdtm.Var) -> str:
    return f"IT.{dataset.name}.{var.name}"


def _comment_oid(dataset: sdtm.Dataset, var: sdtm.Var) -> str:
    return f"COM.{dataset.name}.{var.name}"


def _item_group(dataset: sdtm.Dataset) -> str:
    domain = "QS" if dataset.name == "SUPPQS" else dataset.name
    refs = []
    for order, var in enumerate(dataset.variables, start=1):
        key = (
            f' KeySequence="{dataset.keys.index(var.name) + 1}"' if var.name in dataset.keys else ""
        )
        mandatory = "Yes" if var.name in dataset.keys or var.origin == "Assigned" else "No"
        refs.append(
            f'<ItemRef ItemOID="{_oid(dataset, var)}" OrderNumber="{order}"'
            f' Mandatory="{mandatory}"{key} Role="{var.role or "Record Qualifier"}"/>'
        )
    leaf = f"LF.{dataset.name}"
    filename = f"{dataset.name.lower()}.xpt"
    return (
        f'<ItemGroupDef OID="IG.{dataset.name}" Domain="{domain}" Name="{dataset.name}"'
        f' Repeating="{"No" if dataset.name == "DM" else "Yes"}" IsReferenceData="No"'
        f' SASDatasetName="{dataset.name}" Purpose="Tabulation"'
        f' def:Structure={attr(dataset.structure)} def:StandardOID="STD.SDTMIG"'
        f' def:ArchiveLocationID="{leaf}">'
        + _tt(dataset.label)
        + "".join(refs)
        + f'<def:Class Name="{dataset.cls}"/>'
        + f'<def:leaf ID="{leaf}" xlink:href="{filename}"><def:title>{filename}</def:title>'
        "</def:leaf></ItemGroupDef>"
    )


def _item_def(dataset: sdtm.Dataset, var: sdtm.Var) -> str:
    data_type = "integer" if var.numeric else "text"
    length = "" if var.numeric else f' Length="{var.length}"'
    comment = (
        f' def:CommentOID="{_comment_oid(dataset, var)}"'
        if (dataset.name, var.name) in COMMENTS
        else ""
    )
    code_list = CODED.get((dataset.name, var.name))
    ref = f'<CodeListRef CodeListOID="CL.{code_list}"/>' if code_list else ""
    source = ' Source="Subject"' if var.origin == "Collected" and dataset.name == "QS" else ""
    if var.origin == "Collected" and dataset.name != "QS":
        source = ' Source="Investigator"'
    return (
        f'<ItemDef OID="{_oid(dataset, var)}" Name="{var.name}" DataType="{data_type}"'
        f'{length} SASFieldName="{var.name}"{comment}>'
        + _tt(var.label)
        + ref
        + f'<def:Origin Type="{var.origin}"{source}/></ItemDef>'
    )


def _code_list(name: str, values: list[tuple[str, str]]) -> str:
    items = "".join(
        f'<CodeListItem CodedValue={attr(code)}><Decode><TranslatedText xml:lang="en">'
        f"{text(decode)}</TranslatedText></Decode></CodeListItem>"
        for code, decode in values
    )
    return f'<CodeList OID="CL.{name}" Name="{name}" DataType="text">{items}</CodeList>'


def render(study: StudyConfig, now: datetime) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<ODM xmlns="{ODM_NS}" xmlns:def="{DEF_NS}" xmlns:xlink="{XLINK_NS}"'
        f' ODMVersion="1.3.2" FileType="Snapshot" FileOID="DEFINE.{STUDY_ID}.SDTM"'
        f' CreationDateTime="{now.isoformat()}" Originator="symptom-diary"'
        ' SourceSystem="symptom-diary" def:Context="Submission">',
        f'<Study OID="{STUDY_ID}"><GlobalVariables><StudyName>{STUDY_ID}</StudyName>'
        f"<StudyDescription>{text(NOT_PRO_CTCAE)}</StudyDescription>"
        f"<ProtocolName>{STUDY_ID}</ProtocolName></GlobalVariables>",
        f'<MetaDataVersion OID="MDV.{STUDY_ID}.SDTMIG.{sdtm.SDTMIG_VERSION}"'
        f' Name="SDTM datasets of the symptom diary" Description={attr(NOT_PRO_CTCAE)}'
        ' def:DefineVersion="2.1.0">',
        '<def:Standards><def:Standard OID="STD.SDTMIG" Name="SDTMIG" Type="IG"'
        f' Version="{sdtm.SDTMIG_VERSION}" Status="Final"/></def:Standards>',
    ]
    parts += [_item_group(ds) for ds in sdtm.DATASETS]
    parts += [_item_def(ds, var) for ds in sdtm.DATASETS for var in ds.variables]
    parts += [_code_list(name, values) for name, values in CODE_LISTS.items()]
    parts += [
        f'<def:CommentDef OID="COM.{ds}.{var}">{_tt(comment)}</def:CommentDef>'
        for (ds, var), comment in COMMENTS.items()
    ]
    parts.append("</MetaDataVersion></Study></ODM>\n")
    return "".join(parts)
