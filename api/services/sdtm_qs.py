"""QS records, the big dataset, with a batch encoder straight to XPT bytes and CSV text."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterator
from typing import Any

from api.services import xpt
from api.services.sdtm_datasets import QS, study_day, usubjid
from api.services.standards import DIARY_CATEGORY, ITEMS, RECALL, SCALES, STUDY_ID


class QsRows:
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
            day_number = study_day(day, enrolled)
            for item, score in zip(ITEMS, row[5:10], strict=True):
                self.seq += 1
                text, stresc, stresn = self.answers[(item.field, score)]
                yield (
                    STUDY_ID, "QS", subject, self.seq, group, item.testcd, item.test,
                    DIARY_CATEGORY, text, stresc, stresn, dtc, day_number, RECALL,
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
            day_number = study_day(day, enrolled)
            group_x = x["QSGRPID"](group)
            tail_x = x["QSDTC"](dtc) + self._number(day_number) + self._recall_x
            for index, score in enumerate(row[5:10]):
                self.seq += 1
                xs += [self._subject_x, self._number(self.seq), group_x,
                       self._item_x[index][score], tail_x]  # fmt: skip
                cs.append(
                    f"{self._subject_c},{self.seq},{group},{self._item_c[index][score]},"
                    f"{dtc},{day_number},{RECALL}\n"
                )
        return b"".join(xs), "".join(cs)


def _csv_fields(*values: object) -> str:
    """Values as one CSV fragment (quoted where the csv module would quote them)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()
