"""SAS transport (XPORT) version 5 files, written row by row.

The format regulators receive (SAS TS-140): 80-byte header records, one 140-byte
"namestr" per variable, then fixed-width observations (text padded with blanks, numbers
as 8-byte IBM hexadecimal floats), the end padded with blanks to 80 bytes. A version 5
member header carries no row count, so a dataset can be written as its rows arrive:
no DataFrame of the whole dataset, memory flat however many rows. pyreadstat reads
these files back (the tests do), it just cannot append to one.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import SupportsFloat, cast

RECORD = 80
_LIBRARY = "HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000  "
_MEMBER = "HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!000000000000000001600000000140  "
_DSCRPTR = "HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!000000000000000000000000000000  "
_OBS = "HEADER RECORD*******OBS     HEADER RECORD!!!!!!!000000000000000000000000000000  "
MISSING = b"." + b"\x00" * 7


@dataclass(frozen=True)
class Variable:
    name: str  # at most 8 characters
    label: str  # at most 40 characters
    numeric: bool
    length: int  # bytes; numbers are 8


def ibm_float(value: float | None) -> bytes:
    """An IEEE double as an 8-byte IBM hexadecimal float (missing: SAS's `.`)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if value == 0:
        return b"\x00" * 8
    sign = 0x80 if value < 0 else 0
    mantissa, exponent2 = math.frexp(abs(value))  # value = m * 2**e, 0.5 <= m < 1
    exponent16 = -(-exponent2 // 4)  # ceil: value = f * 16**e16 with 1/16 <= f < 1
    fraction = mantissa / (1 << (4 * exponent16 - exponent2))
    bits = int(fraction * (1 << 56))
    if not 0 <= exponent16 + 64 <= 127:
        raise ValueError(f"{value} is outside the IBM float range")
    return bytes([sign | (exponent16 + 64)]) + bits.to_bytes(7, "big")


def _sas_time(moment: datetime) -> str:
    return moment.strftime("%d%b%y:%H:%M:%S").upper()


def _pad(text: str, width: int) -> bytes:
    return text.encode("ascii", "replace")[:width].ljust(width, b" ")


def char(value: object, width: int) -> bytes:
    """A text value in `width` bytes (UTF-8, cut at a character boundary, blank-padded)."""
    if value is None:
        return b" " * width
    raw = str(value).encode("utf-8")
    if len(raw) > width:
        raw = raw[:width].decode("utf-8", "ignore").encode("utf-8")
    return raw.ljust(width, b" ")


def header(name: str, label: str, variables: tuple[Variable, ...], now: datetime) -> bytes:
    """The library, member and variable headers of a one-dataset transport file."""
    stamp = _sas_time(now)
    return b"".join(
        [
            *_library_header(stamp),
            *_member_header(name, label, len(variables), stamp),
            _namestrs(variables),
            _OBS.encode(),
        ]
    )


def _library_header(stamp: str) -> list[bytes]:
    return [
        _LIBRARY.encode(),
        _pad("SAS", 8)
        + _pad("SAS", 8)
        + _pad("SASLIB", 8)
        + _pad("9.4", 8)
        + _pad("Linux", 8)
        + b" " * 24
        + _pad(stamp, 16),
        _pad(stamp, 16) + b" " * 64,
    ]


def _member_header(name: str, label: str, count: int, stamp: str) -> list[bytes]:
    return [
        _MEMBER.encode(),
        _DSCRPTR.encode(),
        _pad("SAS", 8)
        + _pad(name, 8)
        + _pad("SASDATA", 8)
        + _pad("9.4", 8)
        + _pad("Linux", 8)
        + b" " * 24
        + _pad(stamp, 16),
        _pad(stamp, 16) + b" " * 16 + _pad(label, 40) + b" " * 8,
        f"HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000{count:04d}"
        "00000000000000000000  ".encode(),
    ]


def _namestrs(variables: tuple[Variable, ...]) -> bytes:
    """One 140-byte NAMESTR per variable, padded to whole records."""
    namestrs = b""
    position = 0
    for number, var in enumerate(variables, start=1):
        namestrs += struct.pack(
            ">hhhh8s40s8shhh2s8shhl52s",
            1 if var.numeric else 2,
            0,
            var.length,
            number,
            _pad(var.name, 8),
            _pad(var.label, 40),
            b" " * 8,
            0,
            0,
            0,
            b"\x00\x00",
            b" " * 8,
            0,
            0,
            position,
            b"\x00" * 52,
        )
        position += var.length
    return namestrs + b" " * (-len(namestrs) % RECORD)


def record_writer(variables: tuple[Variable, ...]) -> Callable[[tuple[object, ...]], bytes]:
    """A function turning one row of values into its observation bytes.

    Values repeat a lot down a dataset (study id, subject, test code, answer, day), so
    each variable keeps a small cache of encoded values: most fields cost one lookup.
    """
    encoders: list[Callable[[object], bytes]] = [
        _number if v.numeric else _text(v.length) for v in variables
    ]
    caches: list[dict[object, bytes]] = [{} for _ in variables]
    slots = tuple(zip(encoders, caches, strict=True))

    def encode(row: tuple[object, ...]) -> bytes:
        out = []
        for (make, cache), value in zip(slots, row, strict=True):
            encoded = cache.get(value)
            if encoded is None:
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                encoded = cache[value] = make(value)
            out.append(encoded)
        return b"".join(out)

    return encode


CACHE_SIZE = 4096


def _number(value: object) -> bytes:
    if value is None or value == "":
        return ibm_float(None)
    # A numeric variable's column holds numbers (or their text), never anything else.
    return ibm_float(float(cast("SupportsFloat | str", value)))


def _text(width: int) -> Callable[[object], bytes]:
    return lambda value: char(value, width)


def trailer(bytes_written: int) -> bytes:
    """Blanks to the end of the last 80-byte record."""
    return b" " * (-bytes_written % RECORD)
