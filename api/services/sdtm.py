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
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import Engine

from api.services import xpt
from api.services.exports import row_batches
from api.services.sdtm_datasets import (
    AE,
    AEOUT,
    AEREL,
    DATASETS,
    DM,
    QS,
    SDTMIG_VERSION,
    SUPPQS,
    SV,
    Dataset,
    Var,
    usubjid,
)
from api.services.sdtm_records import plans
from api.study import StudyConfig

__all__ = [
    "AE",
    "AEOUT",
    "AEREL",
    "DATASETS",
    "DM",
    "QS",
    "SDTMIG_VERSION",
    "SUPPQS",
    "SV",
    "Dataset",
    "Var",
    "define_xml",
    "stream_zip",
    "usubjid",
]


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


def stream_zip(
    engine: Engine, study: StudyConfig, site_ids: list[int], now: datetime
) -> Iterator[bytes]:
    """Yield the zip in chunks: each dataset as XPT and CSV, then define.xml."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for dataset, (stmt, keys), make_rows in plans(study, site_ids):
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
